#include "exchange.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "interned.h"
#include "py_ref.h"
#include "ready_awaitable.h"
#include "receive_wait.h"
#include "worker.h"

namespace dbridge::asgi {

namespace {

// uvicorn's flow-control high-water mark, for both directions: request body buffered
// for an app that is not reading, and response bytes not yet taken by the kernel.
constexpr Py_ssize_t high_water = 64 * 1024;

PyTypeObject exchange_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

// An exchange sits in cycles as soon as an app keeps receive/send in the scope (a
// common middleware habit): it takes part in garbage collection.
int exchange_traverse(PyObject* self, visitproc visit, void* arg) {
    auto& ex = *reinterpret_cast<exchange*>(self);
    Py_VISIT(ex.scope);
    Py_VISIT(ex.body);
    Py_VISIT(ex.receive_waiters);
    Py_VISIT(ex.send_waiter);
    Py_VISIT(ex.owner_ref);
    return 0;
}

int exchange_clear(PyObject* self) {
    auto& ex = *reinterpret_cast<exchange*>(self);
    Py_CLEAR(ex.scope);
    Py_CLEAR(ex.body);
    Py_CLEAR(ex.receive_waiters);
    Py_CLEAR(ex.send_waiter);
    Py_CLEAR(ex.owner_ref);
    return 0;
}

// ---- helpers ---------------------------------------------------------------------------

PyObject* disconnect_message() {
    PyObject* m = PyDict_New();
    if (m != nullptr && PyDict_SetItem(m, names.type, names.http_disconnect) < 0) {
        Py_CLEAR(m);
    }
    return m;
}

// Takes the pending body as one bytes object.
PyObject* take_body(exchange& ex) {
    PyObject* body = ex.body;
    ex.body = nullptr;
    ex.body_size = 0;
    if (body == nullptr) {
        return Py_NewRef(names.empty_bytes);
    }
    if (PyBytes_CheckExact(body)) {
        return body;
    }
    PyObject* joined = _PyBytes_Join(names.empty_bytes, body);
    Py_DECREF(body);
    return joined;
}

// The next http.request message: what has arrived, with more_body telling whether the
// request goes on.
PyObject* request_message(exchange& ex) {
    bool paused_for_body = ex.body_size > high_water;
    py_ref body(take_body(ex));
    if (!body) {
        return nullptr;
    }
    bool more = !ex.request_complete;
    if (!more) {
        ex.final_body_delivered = true;
    }
    PyObject* m = PyDict_New();
    if (m == nullptr || PyDict_SetItem(m, names.type, names.http_request) < 0 ||
        PyDict_SetItem(m, names.body, body.get()) < 0 ||
        PyDict_SetItem(m, names.more_body, more ? Py_True : Py_False) < 0) {
        Py_XDECREF(m);
        return nullptr;
    }
    if (paused_for_body && ex.conn != nullptr) {
        ex.conn->resume_input();  // the app caught up: read the socket again
        ex.owner->schedule_flush();
    }
    return m;
}

bool has_message(const exchange& ex) {
    return ex.body != nullptr || (ex.request_complete && !ex.final_body_delivered);
}

// The connection lets go of this exchange: its response is complete, or the client is gone.
void detach(exchange& ex) {
    if (ex.conn == nullptr) {
        return;
    }
    http1::connection* c = ex.conn;
    ex.conn = nullptr;
    if (c->app_state == &ex) {
        c->app_state = nullptr;
        Py_DECREF(reinterpret_cast<PyObject*>(&ex));  // the connection's reference
    }
}

PyObject* runtime_error(const char* format, PyObject* type_name) {
    PyErr_Format(PyExc_RuntimeError, format, type_name);
    return nullptr;
}

const char* write_error_text(http1::write_status st) {
    switch (st) {
    case http1::write_status::content_length_exceeded:
        return "Response content longer than Content-Length";
    case http1::write_status::content_length_short:
        return "Response content shorter than Content-Length";
    default:
        return http1::describe(st);
    }
}

// http.response.start: status and headers go to the writer, which checks every header
// (no response splitting) before a byte is written.
PyObject* start_response(exchange& ex, PyObject* message) {
    PyObject* status_obj = PyDict_GetItemWithError(message, names.status);
    if (status_obj == nullptr) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_KeyError, "status");
        }
        return nullptr;
    }
    long status = PyLong_AsLong(status_obj);
    if (status == -1 && PyErr_Occurred()) {
        return nullptr;
    }
    thread_local std::vector<http1::header_field> fields;
    fields.clear();
    PyObject* headers = PyDict_GetItemWithError(message, names.headers);
    py_ref seq;
    if (headers != nullptr && headers != Py_None) {
        seq = py_ref(PySequence_Fast(headers, "ASGI 'headers' must be an iterable of [name, value] pairs"));
        if (!seq) {
            return nullptr;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.get());
        PyObject** items = PySequence_Fast_ITEMS(seq.get());
        for (Py_ssize_t i = 0; i < n; ++i) {
            PyObject* pair = items[i];
            PyObject* name;
            PyObject* value;
            if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) {
                name = PyTuple_GET_ITEM(pair, 0);
                value = PyTuple_GET_ITEM(pair, 1);
            } else if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) {
                name = PyList_GET_ITEM(pair, 0);
                value = PyList_GET_ITEM(pair, 1);
            } else {
                PyErr_SetString(PyExc_TypeError, "ASGI response headers must be [name, value] pairs");
                return nullptr;
            }
            if (!PyBytes_Check(name) || !PyBytes_Check(value)) {
                PyErr_SetString(PyExc_TypeError, "ASGI response header names and values must be bytes");
                return nullptr;
            }
            fields.push_back({std::string_view(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name)),
                              std::string_view(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))});
        }
    }
    http1::write_status st = ex.conn->start_response(static_cast<int>(status), fields);
    if (st != http1::write_status::ok) {
        PyErr_SetString(PyExc_RuntimeError, write_error_text(st));
        return nullptr;
    }
    ex.response_started = true;
    ex.expect_continue = false;
    if (ex.owner->access_log_enabled()) {
        ex.owner->log_access(ex.scope, static_cast<int>(status));
    }
    ex.owner->schedule_flush();
    return ready_awaitable_new(Py_None);
}

void response_done(exchange& ex) {
    ex.response_complete = true;
    detach(ex);
    // An app still waiting in receive() learns that the cycle is over (as in uvicorn).
    wake_receivers(ex.receive_waiters);
}

// After a body write: wait only when the kernel is not keeping up.
PyObject* after_body_write(exchange& ex) {
    ex.owner->schedule_flush();
    if (ex.conn != nullptr && static_cast<Py_ssize_t>(ex.conn->unsent_bytes()) > high_water) {
        PyObject* future = ex.owner->create_future();
        if (future == nullptr) {
            return nullptr;
        }
        Py_XSETREF(ex.send_waiter, Py_NewRef(future));
        return future;
    }
    return ready_awaitable_new(Py_None);
}

PyObject* send_body(exchange& ex, PyObject* message) {
    PyObject* body = PyDict_GetItemWithError(message, names.body);
    if (body == nullptr && PyErr_Occurred()) {
        return nullptr;
    }
    PyObject* more_obj = PyDict_GetItemWithError(message, names.more_body);
    if (more_obj == nullptr && PyErr_Occurred()) {
        return nullptr;
    }
    int more = more_obj != nullptr ? PyObject_IsTrue(more_obj) : 0;
    if (more < 0) {
        return nullptr;
    }
    Py_buffer view{};
    std::string_view data;
    if (body != nullptr && body != Py_None) {
        if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) {
            return nullptr;
        }
        data = std::string_view(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
    }
    http1::write_status st = ex.conn->send_body(data, more != 0);
    if (view.obj != nullptr) {
        PyBuffer_Release(&view);
    }
    if (st != http1::write_status::ok) {
        if (st == http1::write_status::content_length_short) {
            ex.response_complete = true;
            detach(ex);  // the connection closes: the response cannot be completed
        }
        PyErr_SetString(PyExc_RuntimeError, write_error_text(st));
        return nullptr;
    }
    if (more == 0) {
        response_done(ex);
    }
    return after_body_write(ex);
}

// http.response.pathsend: the file goes from the kernel's page cache to the output
// buffer in C++ (its bytes never become Python objects), a piece at a time: no more
// than the high-water mark is queued, the rest follows as the client takes it
// (on_drained), and the app's send() completes when the whole file is out.
enum class pump_result { more, done, failed };

void close_file(exchange& ex) {
    if (ex.file_fd >= 0) {
        ::close(ex.file_fd);
        ex.file_fd = -1;
    }
}

pump_result pump_file(exchange& ex) {
    char block[64 * 1024];
    while (ex.conn != nullptr && static_cast<Py_ssize_t>(ex.conn->unsent_bytes()) <= high_water) {
        ssize_t n = ::read(ex.file_fd, block, sizeof(block));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return pump_result::failed;
        }
        // Copied, never sent on the spot: the high-water mark paces the file.
        http1::write_status st =
            ex.conn->send_body(std::string_view(block, static_cast<std::size_t>(n)), n != 0, false);
        if (st != http1::write_status::ok) {
            return pump_result::failed;
        }
        if (n == 0) {
            close_file(ex);
            response_done(ex);
            return pump_result::done;
        }
    }
    return ex.conn == nullptr ? pump_result::failed : pump_result::more;
}

// The file could not be read, or its size changed under us: the response cannot be
// completed, so the client sees a close.
void abandon_file(exchange& ex) {
    close_file(ex);
    if (ex.conn != nullptr) {
        ex.conn->abort();
    }
    ex.response_complete = true;
    detach(ex);
    ex.owner->schedule_flush();
}

PyObject* send_path(exchange& ex, PyObject* message) {
    PyObject* path = PyDict_GetItemWithError(message, names.path);
    if (path == nullptr) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_KeyError, "path");
        }
        return nullptr;
    }
    PyObject* encoded_raw = nullptr;
    if (!PyUnicode_FSConverter(path, &encoded_raw)) {
        return nullptr;
    }
    py_ref encoded(encoded_raw);
    int fd = ::open(PyBytes_AS_STRING(encoded.get()), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        return nullptr;
    }
    ex.file_fd = fd;
    switch (pump_file(ex)) {
    case pump_result::done:
        return after_body_write(ex);
    case pump_result::more: {
        ex.owner->schedule_flush();
        PyObject* future = ex.owner->create_future();
        if (future == nullptr) {
            abandon_file(ex);
            return nullptr;
        }
        Py_XSETREF(ex.send_waiter, Py_NewRef(future));
        return future;
    }
    case pump_result::failed:
        break;
    }
    int err = errno;
    abandon_file(ex);
    errno = err != 0 ? err : EIO;
    PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
    return nullptr;
}

// ---- the Python-visible methods ----------------------------------------------------------

// The message receive() can give now (a new reference), or null without an error when
// it has to wait.
PyObject* next_message(exchange& ex) {
    if (ex.disconnected || ex.response_complete) {
        return disconnect_message();
    }
    if (has_message(ex)) {
        return request_message(ex);
    }
    return nullptr;
}

PyObject* take_message(PyObject* self) {
    return next_message(*reinterpret_cast<exchange*>(self));
}

PyObject* wait_for_message(PyObject* self) {
    auto& ex = *reinterpret_cast<exchange*>(self);
    return add_waiter(*ex.owner, ex.receive_waiters);
}

const receive_source exchange_source = {take_message, wait_for_message};

PyObject* exchange_receive_impl(PyObject* self, PyObject*) {
    auto& ex = *reinterpret_cast<exchange*>(self);
    if (ex.expect_continue && ex.conn != nullptr) {
        // RFC 9110 §10.1.1: the client waits for our go-ahead; the app asking for the
        // body is it (uvicorn does the same).
        ex.expect_continue = false;
        ex.conn->send_continue();
        ex.owner->schedule_flush();
    }
    py_ref m(next_message(ex));
    if (m) {
        return ready_awaitable_new(m.get());
    }
    if (PyErr_Occurred()) {
        return nullptr;
    }
    // Nothing yet. Several receive() calls may wait at once (an app polling for the
    // disconnect while another part reads).
    return receive_wait_new(self, exchange_source);
}

PyObject* exchange_send_impl(PyObject* self, PyObject* message) {
    auto& ex = *reinterpret_cast<exchange*>(self);
    if (!PyDict_Check(message)) {
        PyErr_SetString(PyExc_TypeError, "ASGI messages must be dicts");
        return nullptr;
    }
    PyObject* type = PyDict_GetItemWithError(message, names.type);
    if (type == nullptr) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_KeyError, "type");
        }
        return nullptr;
    }
    if (ex.disconnected || (ex.conn == nullptr && !ex.response_complete)) {
        return ready_awaitable_new(Py_None);  // uvicorn: sends after a disconnect are dropped
    }
    if (!ex.response_started) {
        if (PyUnicode_Compare(type, names.http_response_start) != 0) {
            return runtime_error("Expected ASGI message 'http.response.start', but got '%U'.", type);
        }
        return start_response(ex, message);
    }
    if (ex.response_complete) {
        return runtime_error("Unexpected ASGI message '%U' sent, after response already completed.", type);
    }
    if (PyUnicode_Compare(type, names.http_response_body) == 0) {
        return send_body(ex, message);
    }
    if (PyUnicode_Compare(type, names.http_response_pathsend) == 0) {
        return send_path(ex, message);
    }
    return runtime_error("Expected ASGI message 'http.response.body', but got '%U'.", type);
}

void send_500(exchange& ex) {
    static constexpr http1::header_field headers[] = {
        {"content-type", "text/plain; charset=utf-8"},
        {"content-length", "21"},
        {"connection", "close"},
    };
    if (ex.conn->start_response(500, headers) == http1::write_status::ok) {
        ex.conn->send_body("Internal Server Error", false);
        if (ex.owner->access_log_enabled()) {
            ex.owner->log_access(ex.scope, 500);
        }
    }
    ex.owner->schedule_flush();
}

// run_asgi calls this once, when the app returned (None) or raised (the exception,
// already logged with its traceback). What uvicorn does in each case, the client sees.
PyObject* exchange_finish_impl(PyObject* self, PyObject* error) {
    auto& ex = *reinterpret_cast<exchange*>(self);
    if (ex.finished) {
        Py_RETURN_NONE;
    }
    ex.finished = true;
    close_file(ex);
    bool raised = error != Py_None;
    if (!ex.disconnected && ex.conn != nullptr) {
        if (!ex.response_started) {
            if (!raised) {
                ex.owner->log_error("ASGI callable returned without starting response.");
            }
            ex.response_started = true;
            send_500(ex);
            ex.response_complete = true;
        } else if (!ex.response_complete) {
            if (!raised) {
                ex.owner->log_error("ASGI callable returned without completing response.");
            }
            ex.conn->abort();
        }
    }
    detach(ex);
    ex.owner->schedule_flush();
    if (ex.receive_waiters != nullptr) {
        Py_CLEAR(ex.receive_waiters);
    }
    if (ex.send_waiter != nullptr) {
        Py_CLEAR(ex.send_waiter);
    }
    ex.owner->exchange_finished();
    Py_RETURN_NONE;
}

// No C++ exception may cross into CPython: an allocation failure deep in the core
// becomes a MemoryError in the app.
template <typename F>
PyObject* guarded(F&& f) {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
}

PyObject* exchange_receive(PyObject* self, PyObject* arg) {
    return guarded([&] { return exchange_receive_impl(self, arg); });
}

PyObject* exchange_send(PyObject* self, PyObject* message) {
    return guarded([&] { return exchange_send_impl(self, message); });
}

PyObject* exchange_finish(PyObject* self, PyObject* error) {
    return guarded([&] { return exchange_finish_impl(self, error); });
}

// An app task cancelled before its first step (anyone cancelling every task, as a
// shutdown does) never runs run_asgi's body, so finish() is never called. The exchange
// settles itself when it dies (when its connection closes: the connection holds it), as
// if the app had raised, so the worker's count of active requests comes down.
void exchange_finalize(PyObject* self) {
    auto& ex = *reinterpret_cast<exchange*>(self);
    if (ex.finished || ex.owner_ref == nullptr) {
        return;
    }
    PyObject* type;
    PyObject* value;
    PyObject* traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject* r = exchange_finish(self, Py_True);
    if (r == nullptr) {
        PyErr_WriteUnraisable(self);
    }
    Py_XDECREF(r);
    PyErr_Restore(type, value, traceback);
}

void exchange_dealloc(PyObject* self) {
    if (PyObject_CallFinalizerFromDealloc(self) < 0) {
        return;  // resurrected by the finalizer
    }
    PyObject_GC_UnTrack(self);
    close_file(*reinterpret_cast<exchange*>(self));
    exchange_clear(self);
    Py_TYPE(self)->tp_free(self);
}

PyMethodDef exchange_methods[] = {
    {"receive", exchange_receive, METH_NOARGS, "ASGI receive(): the next http.request or http.disconnect."},
    {"send", exchange_send, METH_O, "ASGI send(message)."},
    {"finish", exchange_finish, METH_O, "Called once by run_asgi with None or the app's exception."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyObject* exchange_callable(exchange& ex, const char* which) {
    // The bound methods handed to the app, made without an attribute lookup.
    static PyMethodDef* receive_def = &exchange_methods[0];
    static PyMethodDef* send_def = &exchange_methods[1];
    PyMethodDef* def = which[0] == 'r' ? receive_def : send_def;
    return PyCFunction_NewEx(def, reinterpret_cast<PyObject*>(&ex), nullptr);
}

bool exchange_type_init(PyObject* module) {
    if (!receive_wait_init()) {
        return false;
    }
    exchange_type.tp_name = "dbridge_asgi._core.Exchange";
    exchange_type.tp_basicsize = sizeof(exchange);
    exchange_type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
    exchange_type.tp_dealloc = exchange_dealloc;
    exchange_type.tp_finalize = exchange_finalize;
    exchange_type.tp_traverse = exchange_traverse;
    exchange_type.tp_clear = exchange_clear;
    exchange_type.tp_methods = exchange_methods;
    exchange_type.tp_doc = "One HTTP request/response cycle of an ASGI app.";
    return PyType_Ready(&exchange_type) == 0;
}

exchange* exchange_start(worker& owner, PyObject* owner_ref, http1::connection& c, PyObject* scope,
                         bool expect_continue) {
    auto* ex = PyObject_GC_New(exchange, &exchange_type);
    if (ex == nullptr) {
        return nullptr;
    }
    // A request pipelined behind the previous one can start inside that one's final
    // send(): the previous exchange lets go of the connection here.
    if (c.app_state != nullptr) {
        auto* previous = static_cast<exchange*>(c.app_state);
        previous->conn = nullptr;
        c.app_state = nullptr;
        Py_DECREF(reinterpret_cast<PyObject*>(previous));
    }
    ex->owner = &owner;
    ex->owner_ref = Py_NewRef(owner_ref);
    ex->conn = &c;
    ex->scope = Py_NewRef(scope);
    ex->body = nullptr;
    ex->body_size = 0;
    ex->receive_waiters = nullptr;
    ex->send_waiter = nullptr;
    ex->request_complete = false;
    ex->final_body_delivered = false;
    ex->expect_continue = expect_continue;
    ex->response_started = false;
    ex->response_complete = false;
    ex->disconnected = false;
    ex->finished = false;
    ex->file_fd = -1;
    c.app_state = ex;  // the connection's reference: the new object's own
    PyObject_GC_Track(reinterpret_cast<PyObject*>(ex));
    return ex;
}

void exchange_on_body(exchange& ex, std::string_view chunk) {
    PyObject* bytes = PyBytes_FromStringAndSize(chunk.data(), static_cast<Py_ssize_t>(chunk.size()));
    if (bytes == nullptr) {
        PyErr_WriteUnraisable(nullptr);
        return;
    }
    if (ex.body == nullptr) {
        ex.body = bytes;
    } else {
        if (PyBytes_CheckExact(ex.body)) {
            PyObject* list = PyList_New(1);
            if (list == nullptr) {
                Py_DECREF(bytes);
                PyErr_WriteUnraisable(nullptr);
                return;
            }
            PyList_SET_ITEM(list, 0, ex.body);
            ex.body = list;
        }
        int rc = PyList_Append(ex.body, bytes);
        Py_DECREF(bytes);
        if (rc < 0) {
            PyErr_WriteUnraisable(nullptr);
            return;
        }
    }
    ex.body_size += static_cast<Py_ssize_t>(chunk.size());
    wake_receivers(ex.receive_waiters);
    if (ex.body_size > high_water && ex.conn != nullptr) {
        ex.conn->pause_input();  // the app is not reading: stop reading the socket
    }
}

void exchange_on_request_end(exchange& ex) {
    ex.request_complete = true;
    wake_receivers(ex.receive_waiters);
}

void exchange_on_disconnect(exchange& ex) {
    ex.disconnected = true;
    close_file(ex);
    detach(ex);
    wake_receivers(ex.receive_waiters);
    resolve(ex.send_waiter, Py_None);
}

void exchange_on_drained(exchange& ex) {
    if (ex.file_fd >= 0) {
        switch (pump_file(ex)) {
        case pump_result::more:
            ex.owner->schedule_flush();
            return;  // the app's send() goes on waiting for the rest of the file
        case pump_result::done:
            ex.owner->schedule_flush();
            break;
        case pump_result::failed:
            abandon_file(ex);
            break;
        }
    }
    resolve(ex.send_waiter, Py_None);
}

}  // namespace dbridge::asgi
