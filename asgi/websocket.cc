#include "websocket.h"

#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "interned.h"
#include "py_ref.h"
#include "ready_awaitable.h"
#include "receive_wait.h"
#include "worker.h"
#include "ws/deflate.h"
#include "ws/handshake.h"

namespace dbridge::asgi {

namespace {

// Response bytes not yet taken by the kernel before send() waits (uvicorn's transport
// high-water mark).
constexpr std::size_t high_water = 64 * 1024;

PyTypeObject websocket_type = {PyVarObject_HEAD_INIT(nullptr, 0)};
PyObject* client_disconnected = nullptr;  // dbridge_asgi._core.ClientDisconnected (OSError)

// Strings of the WebSocket messages, made once.
struct websocket_names {
    PyObject* websocket;
    PyObject* ws;
    PyObject* wss;
    PyObject* https;
    PyObject* spec_2_4;
    PyObject* subprotocols;
    PyObject* subprotocol;
    PyObject* response_extension;  // "websocket.http.response"
    PyObject* connect;
    PyObject* receive;
    PyObject* disconnect;
    PyObject* accept;
    PyObject* send;
    PyObject* close;
    PyObject* response_start;
    PyObject* response_body;
    PyObject* bytes;
    PyObject* text;
    PyObject* code;
    PyObject* reason;
    PyObject* connect_message;  // {"type": "websocket.connect"}, copied per use
};
websocket_names wn;

enum class phase : std::uint8_t {
    handshake,  // the app has not answered the upgrade yet
    denial,     // websocket.http.response.start was sent: the body follows
    open,       // accepted: messages flow
    closed,     // the app sent websocket.close, or a denial response is complete
};

// What the handshake needs until the app answers it (once per WebSocket).
struct pending_handshake {
    std::string key;
    std::optional<ws::deflate_agreement> deflate;
    int denial_status = 0;
    std::vector<std::pair<std::string, std::string>> denial_headers;
    std::string denial_body;
};

}  // namespace

struct websocket {
    PyObject_HEAD
    worker* owner;
    PyObject* owner_ref;
    http1::connection* conn;  // before the handshake completed; holds a reference
    ws::connection* socket;   // after it, until released; holds a reference
    PyObject* scope;
    PyObject* queue;            // received messages not yet taken by the app (a list)
    Py_ssize_t queue_head;      // the first one not taken
    PyObject* disconnect;       // the websocket.disconnect message, once it is known
    PyObject* receive_waiters;  // Futures of receive() calls waiting, or null
    PyObject* send_waiter;      // the Future of a send() waiting for the socket to drain
    pending_handshake* handshake;
    phase state;
    bool disconnected;  // the client is gone: send() raises ClientDisconnected
    bool paused;        // reading stopped: the queue is full
    bool finished;
    bool settled;       // counted out of the worker's active requests
};

namespace {

int websocket_traverse(PyObject* self, visitproc visit, void* arg) {
    auto& w = *reinterpret_cast<websocket*>(self);
    Py_VISIT(w.scope);
    Py_VISIT(w.queue);
    Py_VISIT(w.disconnect);
    Py_VISIT(w.receive_waiters);
    Py_VISIT(w.send_waiter);
    Py_VISIT(w.owner_ref);
    return 0;
}

int websocket_clear(PyObject* self) {
    auto& w = *reinterpret_cast<websocket*>(self);
    Py_CLEAR(w.scope);
    Py_CLEAR(w.queue);
    Py_CLEAR(w.disconnect);
    Py_CLEAR(w.receive_waiters);
    Py_CLEAR(w.send_waiter);
    Py_CLEAR(w.owner_ref);
    return 0;
}

Py_ssize_t queued(const websocket& w) {
    return w.queue == nullptr ? 0 : PyList_GET_SIZE(w.queue) - w.queue_head;
}

// Queues a received message and wakes the receive() calls waiting: a waiter takes it from
// the queue when its task resumes (receive_wait.h), so a receive() cancelled after the
// wake-up leaves it for the next one.
void deliver(websocket& w, PyObject* message) {
    if (w.queue == nullptr) {
        w.queue = PyList_New(0);
        if (w.queue == nullptr) {
            PyErr_WriteUnraisable(nullptr);
            return;
        }
    }
    if (PyList_Append(w.queue, message) < 0) {
        PyErr_WriteUnraisable(nullptr);
        return;
    }
    wake_receivers(w.receive_waiters);
    // --ws-max-queue: a full queue stops reading the socket (backpressure to the client).
    if (w.socket != nullptr && !w.paused &&
        static_cast<std::size_t>(queued(w)) >= w.owner->ws_settings().max_queue) {
        w.paused = true;
        w.socket->pause_messages();
    }
}

PyObject* make_disconnect(std::uint16_t code, std::string_view reason, bool with_reason) {
    py_ref m(PyDict_New());
    py_ref code_obj(PyLong_FromLong(code));
    if (!m || !code_obj || PyDict_SetItem(m.get(), names.type, wn.disconnect) < 0 ||
        PyDict_SetItem(m.get(), wn.code, code_obj.get()) < 0) {
        return nullptr;
    }
    if (with_reason) {
        py_ref r(PyUnicode_DecodeUTF8(reason.data(), static_cast<Py_ssize_t>(reason.size()), "replace"));
        if (!r || PyDict_SetItem(m.get(), wn.reason, r.get()) < 0) {
            return nullptr;
        }
    }
    return m.release();
}

// The app learns the WebSocket is over: once. Every receive() waiting gets the message,
// and so does every later one (an app never hangs in receive()).
void set_disconnect(websocket& w, std::uint16_t code, std::string_view reason, bool with_reason) {
    if (w.disconnect != nullptr) {
        return;
    }
    w.disconnect = make_disconnect(code, reason, with_reason);
    if (w.disconnect == nullptr) {
        PyErr_WriteUnraisable(nullptr);
        return;
    }
    wake_receivers(w.receive_waiters);
}

// The http1 connection lets go of this WebSocket (its reference goes).
void detach_http(websocket& w) {
    http1::connection* c = w.conn;
    if (c == nullptr) {
        return;
    }
    w.conn = nullptr;
    if (c->app_state == &w) {
        c->app_state = nullptr;
        Py_DECREF(reinterpret_cast<PyObject*>(&w));
    }
}

// A WebSocket counts as in progress (graceful shutdown waits for it) until the app has
// returned and its socket is closed: the closing handshake is part of the work.
void settle(websocket& w) {
    if (w.settled || !w.finished || w.socket != nullptr) {
        return;
    }
    w.settled = true;
    w.owner->exchange_finished();
}

PyObject* raise_disconnected() {
    PyErr_SetString(client_disconnected, "the WebSocket client disconnected");
    return nullptr;
}

PyObject* runtime_error(const char* format, PyObject* type) {
    PyErr_Format(PyExc_RuntimeError, format, type);
    return nullptr;
}

// Reads an ASGI headers iterable into (name, value) views; `keep` holds the sequence.
bool read_headers(PyObject* message, py_ref& keep, std::vector<http1::header_field>& out) {
    PyObject* headers = PyDict_GetItemWithError(message, names.headers);
    if (headers == nullptr || headers == Py_None) {
        return !PyErr_Occurred();
    }
    keep = py_ref(PySequence_Fast(headers, "ASGI 'headers' must be an iterable of [name, value] pairs"));
    if (!keep) {
        return false;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(keep.get());
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* pair = PySequence_Fast_GET_ITEM(keep.get(), i);
        PyObject* name = nullptr;
        PyObject* value = nullptr;
        if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2) {
            name = PyTuple_GET_ITEM(pair, 0);
            value = PyTuple_GET_ITEM(pair, 1);
        } else if (PyList_Check(pair) && PyList_GET_SIZE(pair) == 2) {
            name = PyList_GET_ITEM(pair, 0);
            value = PyList_GET_ITEM(pair, 1);
        } else {
            PyErr_SetString(PyExc_TypeError, "ASGI headers must be [name, value] pairs");
            return false;
        }
        if (!PyBytes_Check(name) || !PyBytes_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "ASGI header names and values must be bytes");
            return false;
        }
        out.push_back({std::string_view(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name)),
                       std::string_view(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))});
    }
    return true;
}

// Optional str field of a message: empty when absent or None.
bool optional_text(PyObject* message, PyObject* key, std::string_view& out) {
    PyObject* v = PyDict_GetItemWithError(message, key);
    if (v == nullptr || v == Py_None) {
        return !PyErr_Occurred();
    }
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(v, &size);
    if (utf8 == nullptr) {
        return false;
    }
    out = std::string_view(utf8, static_cast<std::size_t>(size));
    return true;
}

// A plain HTTP answer to the upgrade request (403, a denial response, 500); the
// connection closes after it, as uvicorn's does.
void http_answer(websocket& w, int status, std::span<const http1::header_field> app_headers,
                 std::string_view body) {
    if (w.conn == nullptr || w.disconnected) {
        return;
    }
    std::vector<http1::header_field> fields(app_headers.begin(), app_headers.end());
    auto has = [&](std::string_view name) {
        for (const auto& f : app_headers) {
            if (f.name.size() == name.size() &&
                std::equal(name.begin(), name.end(), f.name.begin(),
                           [](char a, char b) { return a == (b | 0x20) || a == b; })) {
                return true;
            }
        }
        return false;
    };
    std::string length = std::to_string(body.size());
    if (!has("connection")) {
        fields.push_back({"connection", "close"});
    }
    if (!has("content-length")) {
        fields.push_back({"content-length", length});
    }
    if (!has("content-type")) {
        fields.push_back({"content-type", "text/plain; charset=utf-8"});
    }
    if (w.conn->start_response(status, fields) == http1::write_status::ok) {
        w.conn->send_body(body, false);
    } else {
        w.conn->abort();
    }
    w.owner->schedule_flush();
}

PyObject* accept(websocket& w, PyObject* message) {
    std::string_view subprotocol;
    if (!optional_text(message, wn.subprotocol, subprotocol)) {
        return nullptr;
    }
    thread_local std::vector<http1::header_field> fields;
    fields.clear();
    py_ref keep;
    if (!read_headers(message, keep, fields)) {
        return nullptr;
    }
    http1::connection& c = *w.conn;
    io::stream& s = c.stream();
    const worker_ws_settings& settings = w.owner->ws_settings();
    std::string_view extensions = w.handshake->deflate ? std::string_view(w.handshake->deflate->response) : "";
    std::string_view date = settings.date_header ? s.owner().date().line() : std::string_view{};
    ws::accept_status st = ws::write_accept(s.output(), w.handshake->key, subprotocol, extensions, fields, date,
                                            settings.default_headers);
    if (st != ws::accept_status::ok) {
        PyErr_SetString(PyExc_RuntimeError, st == ws::accept_status::invalid_subprotocol
                                                ? "invalid subprotocol in websocket.accept"
                                                : "invalid header in websocket.accept");
        return nullptr;
    }
    ws::connection& socket = w.owner->ws_pool().open(
        s, *w.owner, w.handshake->deflate ? &w.handshake->deflate->params : nullptr);
    // The http1 connection's reference becomes the ws::connection's.
    socket.app_state = &w;
    w.socket = &socket;
    c.app_state = nullptr;
    w.conn = nullptr;
    delete w.handshake;
    w.handshake = nullptr;
    w.state = phase::open;
    w.owner->log_websocket(w.scope, "[accepted]");
    s.flush();
    c.upgrade(socket);
    w.owner->schedule_flush();
    return ready_awaitable_new(Py_None);
}

PyObject* after_write(websocket& w) {
    w.owner->schedule_flush();
    if (w.socket != nullptr && w.socket->unsent_bytes() > high_water) {
        PyObject* future = w.owner->create_future();
        if (future == nullptr) {
            return nullptr;
        }
        Py_XSETREF(w.send_waiter, Py_NewRef(future));
        return future;
    }
    return ready_awaitable_new(Py_None);
}

PyObject* send_data(websocket& w, PyObject* message) {
    PyObject* bytes = PyDict_GetItemWithError(message, wn.bytes);
    if (bytes == nullptr && PyErr_Occurred()) {
        return nullptr;
    }
    PyObject* text = PyDict_GetItemWithError(message, wn.text);
    if (text == nullptr && PyErr_Occurred()) {
        return nullptr;
    }
    // uvicorn: "bytes" wins when both are given; neither sends nothing.
    if (bytes != nullptr && bytes != Py_None) {
        Py_buffer view{};
        if (PyObject_GetBuffer(bytes, &view, PyBUF_SIMPLE) < 0) {
            return nullptr;
        }
        std::string_view data(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
        w.socket->send_message(ws::message_kind::binary, data);
        PyBuffer_Release(&view);
    } else if (text != nullptr && text != Py_None) {
        Py_ssize_t size = 0;
        const char* utf8 = PyUnicode_AsUTF8AndSize(text, &size);
        if (utf8 == nullptr) {
            return nullptr;
        }
        w.socket->send_message(ws::message_kind::text, std::string_view(utf8, static_cast<std::size_t>(size)));
    }
    return after_write(w);
}

PyObject* send_close(websocket& w, PyObject* message) {
    long code = 1000;
    PyObject* code_obj = PyDict_GetItemWithError(message, wn.code);
    if (code_obj == nullptr && PyErr_Occurred()) {
        return nullptr;
    }
    if (code_obj != nullptr && code_obj != Py_None) {
        code = PyLong_AsLong(code_obj);
        if (code == -1 && PyErr_Occurred()) {
            return nullptr;
        }
    }
    std::string_view reason;
    if (!optional_text(message, wn.reason, reason)) {
        return nullptr;
    }
    if (code < 0 || code > 0xffff) {
        PyErr_Format(PyExc_ValueError, "invalid WebSocket close code %ld", code);
        return nullptr;
    }
    ws::write_status st = w.socket->send_close(static_cast<std::uint16_t>(code), reason);
    if (st != ws::write_status::ok) {
        PyErr_Format(PyExc_ValueError, st == ws::write_status::invalid_close_code
                                           ? "invalid WebSocket close code %ld"
                                           : "invalid WebSocket close reason (code %ld): at most 123 UTF-8 bytes",
                     code);
        return nullptr;
    }
    w.state = phase::closed;
    // uvicorn: the app's own close is what its next receive() reports.
    set_disconnect(w, static_cast<std::uint16_t>(code), reason, true);
    if (w.paused) {
        // The peer's answer to our close must be read.
        w.paused = false;
        w.socket->resume_messages();
    }
    w.owner->schedule_flush();
    return ready_awaitable_new(Py_None);
}

PyObject* denial_start(websocket& w, PyObject* message) {
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
    if (status < 100 || status >= 600) {
        PyErr_Format(PyExc_RuntimeError, "Invalid HTTP status code '%ld' in response.", status);
        return nullptr;
    }
    std::vector<http1::header_field> fields;
    py_ref keep;
    if (!read_headers(message, keep, fields)) {
        return nullptr;
    }
    w.handshake->denial_status = static_cast<int>(status);
    w.owner->log_websocket(w.scope, std::to_string(status).c_str());
    for (const auto& f : fields) {
        w.handshake->denial_headers.emplace_back(std::string(f.name), std::string(f.value));
    }
    w.state = phase::denial;
    return ready_awaitable_new(Py_None);
}

PyObject* denial_body(websocket& w, PyObject* message) {
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
    if (body != nullptr && body != Py_None) {
        Py_buffer view{};
        if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) {
            return nullptr;
        }
        w.handshake->denial_body.append(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
        PyBuffer_Release(&view);
    }
    if (more == 0) {
        // uvicorn buffers the denial and sends it whole, with Content-Length.
        std::vector<http1::header_field> fields;
        for (const auto& [name, value] : w.handshake->denial_headers) {
            fields.push_back({name, value});
        }
        http_answer(w, w.handshake->denial_status, fields, w.handshake->denial_body);
        w.state = phase::closed;
        set_disconnect(w, ws::close_code::abnormal, {}, false);
        detach_http(w);
    }
    return ready_awaitable_new(Py_None);
}

PyObject* websocket_send_impl(PyObject* self, PyObject* message) {
    auto& w = *reinterpret_cast<websocket*>(self);
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
    if (w.disconnected) {
        return raise_disconnected();
    }
    switch (w.state) {
    case phase::handshake:
        if (PyUnicode_Compare(type, wn.accept) == 0) {
            return accept(w, message);
        }
        if (PyUnicode_Compare(type, wn.close) == 0) {
            // uvicorn: a close before the accept refuses the handshake with 403.
            w.owner->log_websocket(w.scope, "403");
            http_answer(w, 403, {}, {});
            w.state = phase::closed;
            set_disconnect(w, ws::close_code::abnormal, {}, false);
            detach_http(w);
            return ready_awaitable_new(Py_None);
        }
        if (PyUnicode_Compare(type, wn.response_start) == 0) {
            return denial_start(w, message);
        }
        return runtime_error("Expected ASGI message 'websocket.accept', 'websocket.close' or "
                             "'websocket.http.response.start' but got '%U'.",
                             type);
    case phase::denial:
        if (PyUnicode_Compare(type, wn.response_body) == 0) {
            return denial_body(w, message);
        }
        return runtime_error("Expected ASGI message 'websocket.http.response.body' but got '%U'.", type);
    case phase::open:
        if (w.socket == nullptr) {
            return raise_disconnected();
        }
        if (PyUnicode_Compare(type, wn.send) == 0) {
            return send_data(w, message);
        }
        if (PyUnicode_Compare(type, wn.close) == 0) {
            return send_close(w, message);
        }
        return runtime_error("Expected ASGI message 'websocket.send' or 'websocket.close', but got '%U'.",
                             type);
    case phase::closed:
        break;
    }
    return runtime_error("Unexpected ASGI message '%U', after sending 'websocket.close'.", type);
}

// The message receive() can give now (a new reference), or null without an error when
// it has to wait: the queue in order, then the disconnect (for every later call too).
PyObject* take_message(PyObject* self) {
    auto& w = *reinterpret_cast<websocket*>(self);
    if (queued(w) > 0) {
        PyObject* m = Py_NewRef(PyList_GET_ITEM(w.queue, w.queue_head));
        ++w.queue_head;
        if (w.queue_head == PyList_GET_SIZE(w.queue)) {
            if (PyList_SetSlice(w.queue, 0, w.queue_head, nullptr) < 0) {
                Py_DECREF(m);
                return nullptr;
            }
            w.queue_head = 0;
        }
        if (w.paused && w.socket != nullptr &&
            static_cast<std::size_t>(queued(w)) < w.owner->ws_settings().max_queue) {
            w.paused = false;
            w.socket->resume_messages();
            w.owner->schedule_flush();
        }
        return m;
    }
    if (w.disconnect != nullptr) {
        return Py_NewRef(w.disconnect);
    }
    return nullptr;
}

PyObject* wait_for_message(PyObject* self) {
    auto& w = *reinterpret_cast<websocket*>(self);
    return add_waiter(*w.owner, w.receive_waiters);
}

const receive_source websocket_source = {take_message, wait_for_message};

PyObject* websocket_receive_impl(PyObject* self, PyObject*) {
    py_ref m(take_message(self));
    if (m) {
        return ready_awaitable_new(m.get());
    }
    if (PyErr_Occurred()) {
        return nullptr;
    }
    // Several receive() calls may wait at once; each takes its own message on waking.
    return receive_wait_new(self, websocket_source);
}

// run_asgi calls this once, with None or the app's exception (already logged).
PyObject* websocket_finish_impl(PyObject* self, PyObject* error) {
    auto& w = *reinterpret_cast<websocket*>(self);
    if (w.finished) {
        Py_RETURN_NONE;
    }
    w.finished = true;
    bool raised = error != Py_None;
    switch (w.state) {
    case phase::handshake:
        // uvicorn: no handshake answer (returned or raised) -> 500.
        if (!raised) {
            w.owner->log_error("ASGI callable returned without completing handshake.");
        }
        http_answer(w, 500, {}, "Internal Server Error");
        break;
    case phase::denial:
        if (w.conn != nullptr) {
            w.conn->abort();
        }
        break;
    case phase::open:
        // uvicorn closes the transport: what was sent goes out, then the TCP close,
        // without a close frame (the client sees 1006).
        if (w.socket != nullptr && !w.disconnected) {
            w.socket->stream().close_after_flush();
        }
        break;
    case phase::closed:
        break;  // the close frame is out; the peer's answer (or the timeout) ends it
    }
    set_disconnect(w, ws::close_code::abnormal, {}, false);
    detach_http(w);
    w.owner->schedule_flush();
    Py_CLEAR(w.receive_waiters);
    Py_CLEAR(w.send_waiter);
    settle(w);
    Py_RETURN_NONE;
}

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

PyObject* websocket_receive(PyObject* self, PyObject* arg) {
    return guarded([&] { return websocket_receive_impl(self, arg); });
}
PyObject* websocket_send(PyObject* self, PyObject* message) {
    return guarded([&] { return websocket_send_impl(self, message); });
}
PyObject* websocket_finish(PyObject* self, PyObject* error) {
    return guarded([&] { return websocket_finish_impl(self, error); });
}

// A task cancelled before its first step never calls finish(): settle when dying.
void websocket_finalize(PyObject* self) {
    auto& w = *reinterpret_cast<websocket*>(self);
    if (w.finished || w.owner_ref == nullptr) {
        return;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject* r = websocket_finish(self, Py_True);
    if (r == nullptr) {
        PyErr_WriteUnraisable(self);
    }
    Py_XDECREF(r);
    PyErr_Restore(type, value, traceback);
}

void websocket_dealloc(PyObject* self) {
    if (PyObject_CallFinalizerFromDealloc(self) < 0) {
        return;
    }
    PyObject_GC_UnTrack(self);
    auto& w = *reinterpret_cast<websocket*>(self);
    delete w.handshake;
    w.handshake = nullptr;
    websocket_clear(self);
    Py_TYPE(self)->tp_free(self);
}

PyMethodDef websocket_methods[] = {
    {"receive", websocket_receive, METH_NOARGS, "ASGI receive(): websocket.connect, .receive, .disconnect."},
    {"send", websocket_send, METH_O, "ASGI send(message)."},
    {"finish", websocket_finish, METH_O, "Called once by run_asgi with None or the app's exception."},
    {nullptr, nullptr, 0, nullptr},
};

bool intern(PyObject*& slot, const char* text) {
    slot = PyUnicode_InternFromString(text);
    return slot != nullptr;
}

// The HTTP scope of the upgrade request, made into uvicorn's WebSocket scope.
bool make_websocket_scope(PyObject* scope, const ws::upgrade_request& request) {
    PyObject* asgi = PyDict_GetItem(scope, names.asgi);
    PyObject* scheme = PyDict_GetItem(scope, names.scheme);
    py_ref subprotocols(PyList_New(0));
    py_ref extensions(PyDict_New());
    py_ref response_ext(PyDict_New());
    if (asgi == nullptr || scheme == nullptr || !subprotocols || !extensions || !response_ext) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "incomplete HTTP scope");
        }
        return false;
    }
    for (std::string_view p : request.subprotocols) {
        py_ref s(PyUnicode_DecodeLatin1(p.data(), static_cast<Py_ssize_t>(p.size()), nullptr));
        if (!s || PyList_Append(subprotocols.get(), s.get()) < 0) {
            return false;
        }
    }
    // A scheme set by a trusted proxy's X-Forwarded-Proto may already be "wss".
    int secure = PyUnicode_Compare(scheme, wn.https) == 0 || PyUnicode_CompareWithASCIIString(scheme, "wss") == 0;
    return PyDict_SetItem(asgi, names.spec_version, wn.spec_2_4) == 0 &&
           PyDict_SetItem(extensions.get(), wn.response_extension, response_ext.get()) == 0 &&
           PyDict_SetItem(scope, names.type, wn.websocket) == 0 &&
           PyDict_SetItem(scope, names.scheme, secure ? wn.wss : wn.ws) == 0 &&
           PyDict_DelItem(scope, names.method) == 0 &&
           PyDict_SetItem(scope, wn.subprotocols, subprotocols.get()) == 0 &&
           PyDict_SetItem(scope, names.extensions, extensions.get()) == 0;
}

}  // namespace

bool is_websocket(const void* app_state) {
    return app_state != nullptr && Py_IS_TYPE(reinterpret_cast<PyObject*>(const_cast<void*>(app_state)),
                                              &websocket_type);
}

PyObject* websocket_callable(websocket& w, const char* which) {
    PyMethodDef* def = which[0] == 'r' ? &websocket_methods[0] : &websocket_methods[1];
    return PyCFunction_NewEx(def, reinterpret_cast<PyObject*>(&w), nullptr);
}

bool websocket_type_init(PyObject* module) {
    bool ok = intern(wn.websocket, "websocket") && intern(wn.ws, "ws") && intern(wn.wss, "wss") &&
              intern(wn.https, "https") && intern(wn.spec_2_4, "2.4") && intern(wn.subprotocols, "subprotocols") &&
              intern(wn.subprotocol, "subprotocol") && intern(wn.response_extension, "websocket.http.response") &&
              intern(wn.connect, "websocket.connect") && intern(wn.receive, "websocket.receive") &&
              intern(wn.disconnect, "websocket.disconnect") && intern(wn.accept, "websocket.accept") &&
              intern(wn.send, "websocket.send") && intern(wn.close, "websocket.close") &&
              intern(wn.response_start, "websocket.http.response.start") &&
              intern(wn.response_body, "websocket.http.response.body") && intern(wn.bytes, "bytes") &&
              intern(wn.text, "text") && intern(wn.code, "code") && intern(wn.reason, "reason");
    if (!ok) {
        return false;
    }
    client_disconnected = PyErr_NewExceptionWithDoc(
        "dbridge_asgi._core.ClientDisconnected",
        "Raised by a WebSocket send() once the client is gone (uvicorn's ClientDisconnected).", PyExc_OSError,
        nullptr);
    if (client_disconnected == nullptr) {
        return false;
    }
    Py_INCREF(client_disconnected);  // the module's reference; ours stays for raising it
    if (PyModule_AddObject(module, "ClientDisconnected", client_disconnected) < 0) {
        Py_DECREF(client_disconnected);
        return false;
    }
    websocket_type.tp_name = "dbridge_asgi._core.WebSocket";
    websocket_type.tp_basicsize = sizeof(websocket);
    websocket_type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
    websocket_type.tp_dealloc = websocket_dealloc;
    websocket_type.tp_finalize = websocket_finalize;
    websocket_type.tp_traverse = websocket_traverse;
    websocket_type.tp_clear = websocket_clear;
    websocket_type.tp_methods = websocket_methods;
    websocket_type.tp_doc = "One WebSocket of an ASGI app.";
    return PyType_Ready(&websocket_type) == 0;
}

websocket* websocket_start(worker& owner, PyObject* owner_ref, http1::connection& c, PyObject* scope,
                           const ws::upgrade_request& request) {
    if (!make_websocket_scope(scope, request)) {
        return nullptr;
    }
    py_ref connect(PyDict_New());
    if (!connect || PyDict_SetItem(connect.get(), names.type, wn.connect) < 0) {
        return nullptr;
    }
    py_ref queue(PyList_New(0));
    if (!queue || PyList_Append(queue.get(), connect.get()) < 0) {
        return nullptr;
    }
    auto* w = PyObject_GC_New(websocket, &websocket_type);
    if (w == nullptr) {
        return nullptr;
    }
    w->owner = &owner;
    w->owner_ref = Py_NewRef(owner_ref);
    w->conn = &c;
    w->socket = nullptr;
    w->scope = Py_NewRef(scope);
    w->queue = queue.release();
    w->queue_head = 0;
    w->disconnect = nullptr;
    w->receive_waiters = nullptr;
    w->send_waiter = nullptr;
    w->handshake = nullptr;
    w->state = phase::handshake;
    w->disconnected = false;
    w->paused = false;
    w->finished = false;
    w->settled = false;
    PyObject_GC_Track(reinterpret_cast<PyObject*>(w));
    try {
        w->handshake = new pending_handshake;
        w->handshake->key = std::string(request.key);
        const worker_ws_settings& settings = owner.ws_settings();
        if (settings.deflate.enabled) {
            w->handshake->deflate = ws::negotiate_deflate(request.extensions, settings.deflate);
        }
    } catch (const std::bad_alloc&) {
        Py_DECREF(w);
        PyErr_NoMemory();
        return nullptr;
    }
    c.app_state = w;  // the connection's reference: the new object's own
    return w;
}

void websocket_on_http_disconnect(websocket& w) {
    // The client went away before the handshake was answered (uvicorn: 1006).
    w.disconnected = true;
    detach_http(w);
    set_disconnect(w, ws::close_code::abnormal, {}, false);
    resolve(w.send_waiter, Py_None);
}

void websocket_on_http_drained(websocket& w) {
    resolve(w.send_waiter, Py_None);
}

void websocket_on_message(websocket& w, ws::message_kind kind, std::string_view payload) {
    py_ref data(kind == ws::message_kind::text
                    ? PyUnicode_DecodeUTF8(payload.data(), static_cast<Py_ssize_t>(payload.size()), "strict")
                    : PyBytes_FromStringAndSize(payload.data(), static_cast<Py_ssize_t>(payload.size())));
    py_ref m(PyDict_New());
    if (!data || !m || PyDict_SetItem(m.get(), names.type, wn.receive) < 0 ||
        PyDict_SetItem(m.get(), kind == ws::message_kind::text ? wn.text : wn.bytes, data.get()) < 0) {
        PyErr_WriteUnraisable(nullptr);
        return;
    }
    deliver(w, m.get());
}

void websocket_on_close(websocket& w, std::uint16_t code, std::string_view reason) {
    w.disconnected = true;
    set_disconnect(w, code, reason, true);
    resolve(w.send_waiter, Py_None);
}

void websocket_on_drained(websocket& w) {
    resolve(w.send_waiter, Py_None);
}

void websocket_on_released(websocket& w) {
    w.disconnected = true;
    w.socket = nullptr;
    set_disconnect(w, ws::close_code::abnormal, {}, false);
    resolve(w.send_waiter, Py_None);
    settle(w);
    Py_DECREF(reinterpret_cast<PyObject*>(&w));  // the ws::connection's reference
}

void websocket_shutdown(websocket& w) {
    if (w.state != phase::open || w.socket == nullptr || w.disconnected) {
        return;
    }
    w.socket->send_close(1012, {});  // RFC 6455 §7.4.1 via IANA: service restart
    w.state = phase::closed;
    set_disconnect(w, 1012, {}, false);
    if (w.paused) {
        w.paused = false;
        w.socket->resume_messages();
    }
    w.owner->schedule_flush();
}

}  // namespace dbridge::asgi
