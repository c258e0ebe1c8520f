#include "receive_wait.h"

#include "interned.h"
#include "py_ref.h"
#include "worker.h"

namespace dbridge::asgi {

void resolve(PyObject*& waiter, PyObject* value) {
    if (waiter == nullptr) {
        return;
    }
    PyObject* future = waiter;
    waiter = nullptr;
    PyObject* r = PyObject_CallMethodOneArg(future, names.set_result, value != nullptr ? value : Py_None);
    if (r == nullptr) {
        PyErr_Clear();
    }
    Py_XDECREF(r);
    Py_DECREF(future);
}

bool future_done(PyObject* future) {
    PyObject* r = PyObject_CallMethodNoArgs(future, names.done);
    if (r == nullptr) {
        PyErr_Clear();
        return true;
    }
    bool done = r == Py_True;
    Py_DECREF(r);
    return done;
}

PyObject* add_waiter(worker& owner, PyObject*& waiters) {
    if (waiters == nullptr) {
        waiters = PyList_New(0);
        if (waiters == nullptr) {
            return nullptr;
        }
    } else {
        for (Py_ssize_t i = PyList_GET_SIZE(waiters) - 1; i >= 0; --i) {
            if (future_done(PyList_GET_ITEM(waiters, i)) && PySequence_DelItem(waiters, i) < 0) {
                return nullptr;
            }
        }
    }
    PyObject* future = owner.create_future();
    if (future == nullptr || PyList_Append(waiters, future) < 0) {
        Py_XDECREF(future);
        return nullptr;
    }
    return future;
}

void wake_receivers(PyObject*& waiters) {
    PyObject* list = waiters;
    if (list == nullptr) {
        return;
    }
    waiters = nullptr;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); ++i) {
        PyObject* future = PyList_GET_ITEM(list, i);
        if (!future_done(future)) {
            PyObject* f = Py_NewRef(future);
            resolve(f, Py_None);
        }
    }
    Py_DECREF(list);
}

namespace {

// ---- the awaitable of a receive() that has to wait --------------------------------------
// It awaits a future (so the task truly sleeps), and when woken takes its message from its
// owner; woken with nothing left for it (another waiter took it), it waits again.

struct receive_wait {
    PyObject_HEAD
    PyObject* owner;  // the exchange or WebSocket, owned
    const receive_source* source;
    PyObject* inner;  // the current future's __await__ iterator, owned
};

PyTypeObject receive_wait_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

bool receive_wait_arm(receive_wait& w) {
    py_ref future(w.source->wait(w.owner));
    if (!future) {
        return false;
    }
    PyObject* inner = PyObject_GetIter(future.get());  // Future.__iter__ is __await__
    if (inner == nullptr) {
        return false;
    }
    Py_XSETREF(w.inner, inner);
    return true;
}

// One resumption. Returns the value to yield (*done = false) or the message (*done =
// true), or null with an error.
PyObject* receive_wait_step(receive_wait& w, bool* done) {
    for (;;) {
        PyObject* yielded = PyIter_Next(w.inner);
        if (yielded != nullptr) {
            *done = false;
            return yielded;  // the future, to the task: sleep until it completes
        }
        if (PyErr_Occurred()) {
            return nullptr;  // cancelled, most often: it goes to the app
        }
        // Woken: the message is taken now, by a task that is running.
        PyObject* m = w.source->take(w.owner);
        if (m != nullptr || PyErr_Occurred()) {
            *done = true;
            return m;
        }
        if (!receive_wait_arm(w)) {
            return nullptr;
        }
    }
}

PyObject* receive_wait_next(PyObject* self) {
    bool done = false;
    PyObject* r = receive_wait_step(*reinterpret_cast<receive_wait*>(self), &done);
    if (r == nullptr || !done) {
        return r;
    }
    PyObject* stop = PyObject_CallOneArg(PyExc_StopIteration, r);
    Py_DECREF(r);
    if (stop != nullptr) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return nullptr;
}

#if PY_VERSION_HEX >= 0x030A0000
PySendResult receive_wait_send(PyObject* self, PyObject* arg, PyObject** presult) {
    bool done = false;
    PyObject* r = receive_wait_step(*reinterpret_cast<receive_wait*>(self), &done);
    *presult = r;
    if (r == nullptr) {
        return PYGEN_ERROR;
    }
    return done ? PYGEN_RETURN : PYGEN_NEXT;
}
#endif

PyObject* receive_wait_await(PyObject* self) {
    return Py_NewRef(self);
}

int receive_wait_traverse(PyObject* self, visitproc visit, void* arg) {
    auto& w = *reinterpret_cast<receive_wait*>(self);
    Py_VISIT(w.owner);
    Py_VISIT(w.inner);
    return 0;
}

int receive_wait_clear(PyObject* self) {
    auto& w = *reinterpret_cast<receive_wait*>(self);
    Py_CLEAR(w.owner);
    Py_CLEAR(w.inner);
    return 0;
}

void receive_wait_dealloc(PyObject* self) {
    PyObject_GC_UnTrack(self);
    receive_wait_clear(self);
    Py_TYPE(self)->tp_free(self);
}

PyAsyncMethods receive_wait_async = {
    receive_wait_await,  // am_await
    nullptr,             // am_aiter
    nullptr,             // am_anext
#if PY_VERSION_HEX >= 0x030A0000
    receive_wait_send,   // am_send
#endif
};

}  // namespace

bool receive_wait_init() {
    receive_wait_type.tp_name = "dbridge_asgi._core.ReceiveWait";
    receive_wait_type.tp_basicsize = sizeof(receive_wait);
    receive_wait_type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
    receive_wait_type.tp_dealloc = receive_wait_dealloc;
    receive_wait_type.tp_traverse = receive_wait_traverse;
    receive_wait_type.tp_clear = receive_wait_clear;
    receive_wait_type.tp_as_async = &receive_wait_async;
    receive_wait_type.tp_iter = PyObject_SelfIter;
    receive_wait_type.tp_iternext = receive_wait_next;
    receive_wait_type.tp_doc = "A receive() that waits for its next message.";
    return PyType_Ready(&receive_wait_type) == 0;
}

PyObject* receive_wait_new(PyObject* owner, const receive_source& source) {
    auto* w = PyObject_GC_New(receive_wait, &receive_wait_type);
    if (w == nullptr) {
        return nullptr;
    }
    w->owner = Py_NewRef(owner);
    w->source = &source;
    w->inner = nullptr;
    PyObject_GC_Track(reinterpret_cast<PyObject*>(w));
    if (!receive_wait_arm(*w)) {
        Py_DECREF(w);
        return nullptr;
    }
    return reinterpret_cast<PyObject*>(w);
}

}  // namespace dbridge::asgi
