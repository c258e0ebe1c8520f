#include "worker.h"

#include <optional>
#include <stdexcept>

#include "exchange.h"
#include "interned.h"
#include "websocket.h"
#include "ws/handshake.h"

namespace dbridge::asgi {

namespace {

// How often timeouts are checked when no socket event wakes the loop.
constexpr double tick_seconds = 0.25;

std::chrono::milliseconds to_ms(double seconds) {
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

PyObject* attr(PyObject* o, const char* name) {
    PyObject* a = PyObject_GetAttrString(o, name);
    if (a == nullptr) {
        throw std::runtime_error(std::string("missing attribute ") + name);
    }
    return a;
}

// Whether the loop's class keeps the create_task() of asyncio's base loop or uvloop's.
// One that overrides it (rather than setting a task factory) is asked for every task, as
// uvicorn asks it.
bool has_stock_create_task(PyObject* loop) {
    py_ref own(PyObject_GetAttrString(reinterpret_cast<PyObject*>(Py_TYPE(loop)), "create_task"));
    py_ref base_events(PyImport_ImportModule("asyncio.base_events"));
    py_ref base_loop(base_events ? PyObject_GetAttrString(base_events.get(), "BaseEventLoop") : nullptr);
    py_ref base(base_loop ? PyObject_GetAttrString(base_loop.get(), "create_task") : nullptr);
    py_ref uvloop_module(PyImport_GetModule(py_ref(PyUnicode_FromString("uvloop")).get()));  // only if imported
    py_ref uv_loop(uvloop_module ? PyObject_GetAttrString(uvloop_module.get(), "Loop") : nullptr);
    py_ref uv(uv_loop ? PyObject_GetAttrString(uv_loop.get(), "create_task") : nullptr);
    PyErr_Clear();
    return own && ((base && own.get() == base.get()) || (uv && own.get() == uv.get()));
}

// The connection's app state is an HTTP exchange, or a WebSocket whose handshake the app
// has not answered yet.
exchange* current(http1::connection& c) {
    return is_websocket(c.app_state) ? nullptr : static_cast<exchange*>(c.app_state);
}

websocket* current_websocket(http1::connection& c) {
    return is_websocket(c.app_state) ? static_cast<websocket*>(c.app_state) : nullptr;
}

websocket* socket_websocket(ws::connection& c) {
    return static_cast<websocket*>(c.app_state);
}

}  // namespace

worker::worker(PyObject* app, PyObject* loop, PyObject* run_asgi, PyObject* state, PyObject* access_log,
               PyObject* warn, const worker_options& options, ring_selector* ring, PyObject* ring_object)
    : _scope(options.root_path, options.scheme, state == Py_None ? nullptr : state, options.proxies),
      _ws_pool(options.ws_connection),
      _limit_concurrency(options.limit_concurrency),
      _reset_contextvars(options.reset_contextvars),
      _tls(options.tls),
      _app(py_ref::borrow(app)),
      _loop(py_ref::borrow(loop)),
      _run_asgi(py_ref::borrow(run_asgi)),
      _access_log(access_log == Py_None ? py_ref() : py_ref::borrow(access_log)),
      _warn(warn == Py_None ? py_ref() : py_ref::borrow(warn)) {
    if (ring != nullptr) {
        _reactor = &ring->reactor();
        _ring_object = py_ref::borrow(ring_object);
    } else {
        io::reactor_config rc;
        rc.io = io::parse_backend_choice(options.io);
        _own_reactor = io::reactor::create(rc);
        _reactor = _own_reactor.get();
    }

    http1::server_config sc;
    sc.limits.max_request_line = options.limit_request_line;
    sc.limits.max_header_count = options.limit_request_fields;
    sc.limits.max_header_bytes = options.limit_request_field_size;
    sc.limits.max_body = options.max_body_size;
    sc.keep_alive_timeout = to_ms(options.keep_alive_timeout);
    sc.header_timeout = to_ms(options.header_timeout);
    sc.send_timeout = to_ms(options.send_timeout);
    sc.date_header = options.date_header;
    sc.default_headers.clear();
    if (options.server_header) {
        sc.default_headers = "server: dbridge-asgi\r\n";
    }
    for (const auto& [name, value] : options.default_headers) {
        sc.default_headers += name + ": " + value + "\r\n";
    }
    if (_warn) {
        PyObject* w = _warn.get();
        sc.warn = [w](std::string_view message) {
            PyObject* r = PyObject_CallFunction(w, "s#", message.data(), static_cast<Py_ssize_t>(message.size()));
            if (r == nullptr) {
                PyErr_WriteUnraisable(w);
            }
            Py_XDECREF(r);
        };
    }
    _ws_settings.enabled = options.ws != "none";
    _ws_settings.max_queue = options.ws_max_queue == 0 ? 1 : options.ws_max_queue;
    // uvicorn's permessage-deflate settings (websockets-sansio): 12-bit windows both ways,
    // memLevel 5.
    _ws_settings.deflate.enabled = options.ws_per_message_deflate;
    _ws_settings.deflate.server_max_window_bits = 12;
    _ws_settings.deflate.client_max_window_bits = 12;
    _ws_settings.deflate.memory_level = 5;
    _ws_settings.date_header = sc.date_header;
    _ws_settings.default_headers = sc.default_headers;
    _server = std::make_unique<http1::server>(std::move(sc), *this);

    _create_task = py_ref(attr(loop, "create_task"));
    _get_task_factory = py_ref(attr(loop, "get_task_factory"));
#if PY_VERSION_HEX >= 0x030B0000
    // Without a task factory, loop.create_task(coro) is Task(coro, loop=loop): calling the
    // type ourselves skips the loop's Python-level wrapper (about a sixth of a raw request's
    // interpreter work on 3.11). From 3.12 the task starts eagerly, inside this call, and
    // runs until it first has to wait: a handler that answers without waiting (most do,
    // for small requests) completes here, with no loop round trip.
    if (has_stock_create_task(loop)) {
        py_ref asyncio(PyImport_ImportModule("asyncio"));
        if (!asyncio) {
            throw std::runtime_error("cannot import asyncio");
        }
        _task_type = py_ref(attr(asyncio.get(), "Task"));
#if PY_VERSION_HEX >= 0x030C0000
        _task_kwnames = py_ref(options.reset_contextvars ? Py_BuildValue("(sss)", "loop", "eager_start", "context")
                                                         : Py_BuildValue("(ss)", "loop", "eager_start"));
#else
        // Without keywords the call takes CPython's fast argument path; the task finds its
        // loop as the running one (requests only ever start inside the loop's callbacks).
        _task_kwnames = py_ref(options.reset_contextvars ? Py_BuildValue("(ss)", "loop", "context")
                                                         : PyTuple_New(0));
#endif
        if (!_task_kwnames) {
            throw std::runtime_error("cannot build keyword names");
        }
    }
#endif
    _create_future = py_ref(attr(loop, "create_future"));
    _call_soon = py_ref(attr(loop, "call_soon"));
    _call_later = py_ref(attr(loop, "call_later"));
    py_ref logging(PyImport_ImportModule("logging"));
    if (!logging) {
        throw std::runtime_error("cannot import logging");
    }
    py_ref logger(PyObject_CallMethod(logging.get(), "getLogger", "s", "dbridge_asgi.error"));
    if (!logger) {
        throw std::runtime_error("cannot get the dbridge_asgi.error logger");
    }
    _error_logger_error = py_ref(attr(logger.get(), "error"));
    // A failed handshake (a port scan, a client that rejects our certificate) is the
    // client's business: a debug line, decided once at start like the access log.
    if (_tls) {
        py_ref debug_enabled(PyObject_CallMethod(logger.get(), "isEnabledFor", "i", 10));
        if (debug_enabled && PyObject_IsTrue(debug_enabled.get()) == 1) {
            py_ref debug(attr(logger.get(), "debug"));
            _reactor->set_tls_error_log([debug = std::move(debug)](std::string_view reason) {
                py_ref r(PyObject_CallFunction(debug.get(), "ss#", "TLS connection closed: %s", reason.data(),
                                               static_cast<Py_ssize_t>(reason.size())));
                if (!r) {
                    PyErr_WriteUnraisable(nullptr);
                }
            });
        }
        PyErr_Clear();
    }
    _error_logger_info = py_ref(attr(logger.get(), "info"));
}

worker::~worker() {
    _reactor->set_tls_error_log({});
    _reactor->stop_accepting();
    _reactor->close_all();
    _reactor->poll(0);
    if (!_own_reactor) {
        // The reactor outlives us (it is the loop's selector): nothing it still holds
        // may call back into this worker's connections.
        _reactor->orphan_streams();
        _reactor->flush();
    }
    // A WebSocket whose socket is still closing in a reactor we leave behind never hears
    // on_released(): its app object lets go of the (pooled, about to go) connection now.
    _ws_pool.for_each_open([this](ws::connection& c) { on_released(c); });
}

const char* worker::backend() const {
    return io::backend_name(_reactor->kind());
}

void worker::add_listener(int fd, bool shared) {
    _reactor->add_listener(fd, *_server, _tls.get(), shared);
}

void worker::start(PyObject* self) {
    if (_started) {
        return;
    }
    _self = self;
    if (on_ring_selector()) {
        // select() submits what the loop's callbacks queued, waits, dispatches, and runs
        // the reactor's timeouts: no reader, no tick, no scheduled flush.
        _started = true;
        _reactor->flush();
        return;
    }
    _flush_callback = py_ref(attr(self, "flush"));
    _tick_callback = py_ref(attr(self, "tick"));
    py_ref poll_callback(attr(self, "poll"));
    _wait_fd = _reactor->wait_fd();
    py_ref r(PyObject_CallMethod(_loop.get(), "add_reader", "iO", _wait_fd, poll_callback.get()));
    if (!r) {
        throw std::runtime_error("loop.add_reader failed");
    }
    _started = true;
    // The accepts armed by add_listener() are handed to the kernel now, not at the
    // first wakeup (which could not come before they are).
    _reactor->flush();
    tick();
}

void worker::poll() {
    _reactor->poll(0);
    // What the handlers queued during the poll (receives for new connections, sends of
    // apps that answered synchronously) goes to the kernel now, not at the next wakeup.
    _reactor->flush();
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(nullptr);
    }
}

void worker::flush() {
    _flush_scheduled = false;
    _reactor->flush();
}

void worker::tick() {
    // Rescheduled whatever happens below: the tick is what runs the timeouts.
    try {
        _reactor->poll(0);
        _reactor->flush();
    } catch (const std::exception& e) {
        log_error(e.what());
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(nullptr);
    }
    if (!_started) {
        return;
    }
    py_ref delay(PyFloat_FromDouble(tick_seconds));
    _tick_handle = py_ref(PyObject_CallFunctionObjArgs(_call_later.get(), delay.get(), _tick_callback.get(), nullptr));
    if (!_tick_handle) {
        PyErr_WriteUnraisable(nullptr);
    }
}

void worker::schedule_flush() {
    if (_flush_scheduled || !_flush_callback) {
        return;
    }
    _flush_scheduled = true;
    py_ref h(PyObject_CallOneArg(_call_soon.get(), _flush_callback.get()));
    if (!h) {
        _flush_scheduled = false;
        PyErr_WriteUnraisable(nullptr);
    }
}

void worker::stop_accepting() {
    _reactor->stop_accepting();
    _reactor->flush();
}

void worker::shutdown() {
    // Connections between requests would only be reused for requests we will not
    // serve: close them; in-flight exchanges finish on their own.
    _server->begin_shutdown();
    // Open WebSockets are told the service restarts (1012), as uvicorn does.
    _ws_pool.for_each_open([](ws::connection& c) {
        if (websocket* w = socket_websocket(c)) {
            py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(w));
            websocket_shutdown(*w);
        }
    });
    _reactor->flush();
}

void worker::disconnect_responding() {
    _server->disconnect_responding();
    _reactor->flush();
}

void worker::close_all() {
    _reactor->close_all();
    // With io_uring a socket is closed only once its cancelled operations have come back:
    // wait for them (bounded), or the descriptors would outlive the server.
    for (int i = 0; i < 100 && _reactor->open_streams() > 0; ++i) {
        _reactor->poll(10);
    }
    _reactor->flush();
}

void worker::detach_from_loop() {
    if (_started && !on_ring_selector()) {
        py_ref r(PyObject_CallMethod(_loop.get(), "remove_reader", "i", _wait_fd));
        if (!r) {
            PyErr_Clear();
        }
        if (_tick_handle) {
            py_ref c(PyObject_CallMethod(_tick_handle.get(), "cancel", nullptr));
            if (!c) {
                PyErr_Clear();
            }
        }
    }
    _started = false;
    _tick_handle = py_ref();
    _flush_callback = py_ref();
    _tick_callback = py_ref();
}

PyObject* worker::create_future() {
    return PyObject_CallNoArgs(_create_future.get());
}

void worker::log_error(const char* message) {
    py_ref r(PyObject_CallFunction(_error_logger_error.get(), "s", message));
    if (!r) {
        PyErr_WriteUnraisable(nullptr);
    }
}

namespace {

// uvicorn's "host:port" of the client (empty without one), a new reference.
PyObject* client_text(PyObject* scope) {
    PyObject* client = PyDict_GetItem(scope, names.client);
    if (client != nullptr && PyTuple_Check(client) && PyTuple_GET_SIZE(client) == 2) {
        return PyUnicode_FromFormat("%S:%S", PyTuple_GET_ITEM(client, 0), PyTuple_GET_ITEM(client, 1));
    }
    return Py_NewRef(names.empty_str);
}

// urllib.parse.quote(path) with "?query" appended, as uvicorn logs a target; a new reference.
PyObject* quoted_target(PyObject* scope) {
    PyObject* path = PyDict_GetItem(scope, names.path);
    PyObject* query = PyDict_GetItem(scope, names.query_string);
    std::string target;
    if (path != nullptr && PyUnicode_Check(path)) {
        // Unreserved characters and "/" stay, the rest of the UTF-8 bytes become %XX.
        Py_ssize_t size = 0;
        const char* utf8 = PyUnicode_AsUTF8AndSize(path, &size);
        if (utf8 == nullptr) {
            PyErr_Clear();
            size = 0;
        }
        static constexpr char hex[] = "0123456789ABCDEF";
        for (Py_ssize_t i = 0; i < size; ++i) {
            unsigned char ch = static_cast<unsigned char>(utf8[i]);
            bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                        ch == '_' || ch == '.' || ch == '-' || ch == '~' || ch == '/';
            if (keep) {
                target.push_back(static_cast<char>(ch));
            } else {
                target.push_back('%');
                target.push_back(hex[ch >> 4]);
                target.push_back(hex[ch & 15]);
            }
        }
    }
    if (query != nullptr && PyBytes_Check(query) && PyBytes_GET_SIZE(query) > 0) {
        target.push_back('?');
        target.append(PyBytes_AS_STRING(query), static_cast<std::size_t>(PyBytes_GET_SIZE(query)));
    }
    return PyUnicode_DecodeLatin1(target.data(), static_cast<Py_ssize_t>(target.size()), nullptr);
}

}  // namespace

void worker::log_access(PyObject* scope, int status) {
    // The access logger gets uvicorn's fields ready-made: "host:port" (empty without a
    // client), the method, the quoted target, the HTTP version, the status.
    PyObject* method = PyDict_GetItem(scope, names.method);
    PyObject* version = PyDict_GetItem(scope, names.http_version);
    py_ref client(client_text(scope));
    py_ref target(quoted_target(scope));
    py_ref status_obj(PyLong_FromLong(status));
    if (!client || !target || !status_obj) {
        PyErr_WriteUnraisable(_access_log.get());
        return;
    }
    py_ref r(PyObject_CallFunctionObjArgs(_access_log.get(), client.get(), method ? method : Py_None, target.get(),
                                          version ? version : Py_None, status_obj.get(), nullptr));
    if (!r) {
        PyErr_WriteUnraisable(_access_log.get());
    }
}

void worker::log_websocket(PyObject* scope, const char* outcome) {
    // uvicorn's line on its error logger at INFO: '<client> - "WebSocket <target>" <outcome>'.
    py_ref client(client_text(scope));
    py_ref target(quoted_target(scope));
    if (!client || !target) {
        PyErr_WriteUnraisable(nullptr);
        return;
    }
    py_ref r(PyObject_CallFunction(_error_logger_info.get(), "sOOs", "%s - \"WebSocket %s\" %s", client.get(),
                                   target.get(), outcome));
    if (!r) {
        PyErr_WriteUnraisable(nullptr);
    }
}

void worker::exchange_finished() {
    if (_active > 0) {
        --_active;
    }
}

// ---- http1::request_handler --------------------------------------------------------------

void worker::reject_overload(http1::connection& c, PyObject* scope) {
    // uvicorn's answer when --limit-concurrency is exceeded.
    static constexpr http1::header_field headers[] = {
        {"content-type", "text/plain; charset=utf-8"},
        {"content-length", "19"},
        {"connection", "close"},
    };
    if (_warn) {
        _server->config().warn("Exceeded concurrency limit.");
    }
    c.start_response(503, headers);
    c.send_body("Service Unavailable", false);
    if (_access_log) {
        log_access(scope, 503);
    }
}

void worker::reject_handshake(http1::connection& c, int status, const char* reason) {
    // RFC 6455 §4.2.1 / §4.4: a request that asks for a WebSocket but gets the handshake
    // wrong is answered as HTTP (426 names the version we speak), then closed.
    std::string body = std::string("Failed to open a WebSocket connection: ") + reason + ".\n";
    std::string length = std::to_string(body.size());
    http1::header_field headers[] = {
        {"content-type", "text/plain; charset=utf-8"},
        {"content-length", length},
        {"connection", "close"},
        ws::version_header,
    };
    std::size_t count = status == 426 ? 4 : 3;
    c.start_response(status, std::span<const http1::header_field>(headers, count));
    c.send_body(body, false);
}

void worker::on_request(http1::connection& c, const http1::request_head& head) {
    std::optional<ws::upgrade_request> upgrade;
    if (head.upgrade && _ws_settings.enabled && ws::wants_websocket(head)) {
        upgrade = ws::parse_upgrade(head);
        if (upgrade->error_status != 0) {
            reject_handshake(c, upgrade->error_status, upgrade->error_reason);
            return;
        }
    }
    py_ref scope(_scope.build(c, head));
    if (!scope) {
        PyErr_WriteUnraisable(nullptr);
        c.abort();
        return;
    }
    if (_limit_concurrency != 0 && _active >= _limit_concurrency) {
        reject_overload(c, scope.get());
        return;
    }
    // The worker's own Python object keeps it alive for as long as exchanges exist.
    PyObject* self_ref = _self != nullptr ? _self : Py_None;
    PyObject* exo;
    py_ref receive, send;
    if (upgrade) {
        websocket* w = websocket_start(*this, self_ref, c, scope.get(), *upgrade);
        exo = reinterpret_cast<PyObject*>(w);
        if (w != nullptr) {
            receive = py_ref(websocket_callable(*w, "receive"));
            send = py_ref(websocket_callable(*w, "send"));
        }
    } else {
        exchange* ex = exchange_start(*this, self_ref, c, scope.get(), head.expect_continue);
        exo = reinterpret_cast<PyObject*>(ex);
        if (ex != nullptr) {
            receive = py_ref(exchange_callable(*ex, "receive"));
            send = py_ref(exchange_callable(*ex, "send"));
        }
    }
    if (exo == nullptr) {
        PyErr_WriteUnraisable(nullptr);
        c.abort();
        return;
    }
    ++_active;
    // The app may answer inside the eager first step below (a WebSocket accept upgrades
    // the connection there): the exchange must outlive it.
    py_ref keep = py_ref::borrow(exo);
    py_ref coro;
    if (receive && send) {
        PyObject* args[] = {_app.get(), scope.get(), receive.get(), send.get(), exo};
        coro = py_ref(PyObject_Vectorcall(_run_asgi.get(), args, 5, nullptr));
    }
    py_ref task;
    py_ref context;
    // Cleared when a step below fails; the coroutine is then closed, not just dropped.
    bool ready = bool(coro);
    if (ready && _reset_contextvars) {
        context = py_ref(PyContext_New());
        ready = bool(context);
    }
    // The app (or an instrumentation library) may install a task factory at any time.
    bool direct = false;
    if (ready && _task_type) {
        py_ref factory(PyObject_CallNoArgs(_get_task_factory.get()));
        ready = bool(factory);
        direct = factory.get() == Py_None;
    }
    if (ready && direct) {
#if PY_VERSION_HEX >= 0x030C0000
        PyObject* args[] = {coro.get(), _loop.get(), Py_True, context.get()};
#else
        PyObject* args[] = {coro.get(), _loop.get(), context.get()};
#endif
        PyObject* kwnames = PyTuple_GET_SIZE(_task_kwnames.get()) != 0 ? _task_kwnames.get() : nullptr;
        task = py_ref(PyObject_Vectorcall(_task_type.get(), args, 1, kwnames));
    } else if (ready && context) {
        // create_task() copies the current context: make the fresh one current for the call
        // (the context= keyword only exists from Python 3.11).
        if (PyContext_Enter(context.get()) == 0) {
            task = py_ref(PyObject_CallOneArg(_create_task.get(), coro.get()));
            PyContext_Exit(context.get());
        }
    } else if (ready) {
        task = py_ref(PyObject_CallOneArg(_create_task.get(), coro.get()));
    }
    if (!task) {
        if (coro) {
            // A coroutine that will never run: closed, so no "was never awaited" warning
            // hides the error reported below.
            PyObject *type, *value, *traceback;
            PyErr_Fetch(&type, &value, &traceback);
            py_ref closed(PyObject_CallMethod(coro.get(), "close", nullptr));
            if (!closed) {
                PyErr_Clear();
            }
            PyErr_Restore(type, value, traceback);
        }
        PyErr_WriteUnraisable(_run_asgi.get());
        py_ref r(PyObject_CallMethod(exo, "finish", "O", Py_True));
        if (!r) {
            PyErr_Clear();
        }
    }
}

void worker::on_body(http1::connection& c, std::string_view chunk) {
    if (exchange* ex = current(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(ex));
        exchange_on_body(*ex, chunk);
    }
}

void worker::on_request_end(http1::connection& c) {
    if (exchange* ex = current(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(ex));
        exchange_on_request_end(*ex);
    }
}

void worker::on_disconnect(http1::connection& c) {
    if (websocket* w = current_websocket(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(w));
        websocket_on_http_disconnect(*w);
    } else if (exchange* ex = current(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(ex));
        exchange_on_disconnect(*ex);
    }
}

void worker::on_drained(http1::connection& c) {
    if (websocket* w = current_websocket(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(w));
        websocket_on_http_drained(*w);
    } else if (exchange* ex = current(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(ex));
        exchange_on_drained(*ex);
    }
}

void worker::on_connection_closed(http1::connection& c) {
    scope_builder::forget_connection(c);
}

// ---- ws::message_handler -------------------------------------------------------------------

void worker::on_message(ws::connection& c, ws::message_kind kind, std::string_view payload) {
    if (websocket* w = socket_websocket(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(w));
        websocket_on_message(*w, kind, payload);
    }
}

void worker::on_close(ws::connection& c, std::uint16_t code, std::string_view reason) {
    if (websocket* w = socket_websocket(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(w));
        websocket_on_close(*w, code, reason);
    }
}

void worker::on_drained(ws::connection& c) {
    if (websocket* w = socket_websocket(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(w));
        websocket_on_drained(*w);
    }
}

void worker::on_released(ws::connection& c) {
    if (websocket* w = socket_websocket(c)) {
        c.app_state = nullptr;
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(w));
        websocket_on_released(*w);
    }
}

}  // namespace dbridge::asgi
