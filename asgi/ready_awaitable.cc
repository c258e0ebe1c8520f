#include "ready_awaitable.h"

namespace dbridge::asgi {

namespace {

struct ready_awaitable {
    PyObject_HEAD
    PyObject* result;  // owned; taken by the first resumption
};

PyTypeObject ready_awaitable_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

// send() and most calls complete with None: one shared instance serves them all (with no
// result it has no state, so awaiting it any number of times is the same).
ready_awaitable* completed_with_none = nullptr;

void ready_dealloc(PyObject* self) {
    Py_XDECREF(reinterpret_cast<ready_awaitable*>(self)->result);
    Py_TYPE(self)->tp_free(self);
}

PyObject* ready_await(PyObject* self) {
    Py_INCREF(self);
    return self;
}

// The iterator protocol path (used by `yield from` and older interpreters).
PyObject* ready_next(PyObject* self) {
    auto* a = reinterpret_cast<ready_awaitable*>(self);
    PyObject* result = a->result;
    a->result = nullptr;
    if (result == nullptr || result == Py_None) {
        Py_XDECREF(result);
        return nullptr;  // StopIteration with value None
    }
    // StopIteration(value), built so that a tuple result is not taken as its args.
    PyObject* stop = PyObject_CallOneArg(PyExc_StopIteration, result);
    Py_DECREF(result);
    if (stop != nullptr) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return nullptr;
}

#if PY_VERSION_HEX >= 0x030A0000
PySendResult ready_send(PyObject* self, PyObject* arg, PyObject** presult) {
    auto* a = reinterpret_cast<ready_awaitable*>(self);
    *presult = a->result != nullptr ? a->result : Py_NewRef(Py_None);
    a->result = nullptr;
    return PYGEN_RETURN;
}
#endif

PyAsyncMethods ready_async = {
    ready_await,  // am_await
    nullptr,      // am_aiter
    nullptr,      // am_anext
#if PY_VERSION_HEX >= 0x030A0000
    ready_send,   // am_send
#endif
};

}  // namespace

bool ready_awaitable_init(PyObject* module) {
    ready_awaitable_type.tp_name = "dbridge_asgi._core.ReadyAwaitable";
    ready_awaitable_type.tp_basicsize = sizeof(ready_awaitable);
    ready_awaitable_type.tp_flags = Py_TPFLAGS_DEFAULT;
    ready_awaitable_type.tp_dealloc = ready_dealloc;
    ready_awaitable_type.tp_as_async = &ready_async;
    ready_awaitable_type.tp_iter = PyObject_SelfIter;
    ready_awaitable_type.tp_iternext = ready_next;
    ready_awaitable_type.tp_doc = "An already-completed awaitable.";
    if (PyType_Ready(&ready_awaitable_type) < 0) {
        return false;
    }
    completed_with_none = PyObject_New(ready_awaitable, &ready_awaitable_type);
    if (completed_with_none == nullptr) {
        return false;
    }
    completed_with_none->result = nullptr;
    return true;
}

PyObject* ready_awaitable_new(PyObject* result) {
    if (result == nullptr || result == Py_None) {
        return Py_NewRef(reinterpret_cast<PyObject*>(completed_with_none));
    }
    auto* a = PyObject_New(ready_awaitable, &ready_awaitable_type);
    if (a == nullptr) {
        return nullptr;
    }
    a->result = Py_NewRef(result != nullptr ? result : Py_None);
    return reinterpret_cast<PyObject*>(a);
}

}  // namespace dbridge::asgi
