#include "worker.h"

#include <stdexcept>

#include "exchange.h"
#include "interned.h"

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

exchange* current(http1::connection& c) {
    return static_cast<exchange*>(c.app_state);
}

}  // namespace

worker::worker(PyObject* app, PyObject* loop, PyObject* run_asgi, PyObject* state, PyObject* access_log,
               PyObject* warn, const worker_options& options, ring_selector* ring, PyObject* ring_object)
    : _scope(options.root_path, options.scheme, state == Py_None ? nullptr : state),
      _limit_concurrency(options.limit_concurrency),
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
    _server = std::make_unique<http1::server>(std::move(sc), *this);

    _create_task = py_ref(attr(loop, "create_task"));
#if PY_VERSION_HEX >= 0x030C0000
    // Python 3.12+: the app's task starts eagerly, inside this call, and runs until it
    // first has to wait. A handler that answers without waiting (most do, for small
    // requests) completes here: no loop round trip, no scheduling, no task registry.
    {
        py_ref asyncio(PyImport_ImportModule("asyncio"));
        if (!asyncio) {
            throw std::runtime_error("cannot import asyncio");
        }
        _eager_task_type = py_ref(attr(asyncio.get(), "Task"));
        _eager_kwnames = py_ref(Py_BuildValue("(ss)", "loop", "eager_start"));
        if (!_eager_kwnames) {
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
}

worker::~worker() {
    _reactor->stop_accepting();
    _reactor->close_all();
    _reactor->poll(0);
    if (!_own_reactor) {
        // The reactor outlives us (it is the loop's selector): nothing it still holds
        // may call back into this worker's connections.
        _reactor->orphan_streams();
        _reactor->flush();
    }
}

const char* worker::backend() const {
    return io::backend_name(_reactor->kind());
}

void worker::add_listener(int fd) {
    _reactor->add_listener(fd, *_server);
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

void worker::log_access(PyObject* scope, int status) {
    // The access logger gets uvicorn's fields ready-made: "host:port" (empty without a
    // client), the method, quote(path) with "?query" appended, the HTTP version, status.
    PyObject* client = PyDict_GetItem(scope, names.client);
    PyObject* method = PyDict_GetItem(scope, names.method);
    PyObject* path = PyDict_GetItem(scope, names.path);
    PyObject* query = PyDict_GetItem(scope, names.query_string);
    PyObject* version = PyDict_GetItem(scope, names.http_version);
    py_ref client_text;
    if (client != nullptr && PyTuple_Check(client) && PyTuple_GET_SIZE(client) == 2) {
        client_text = py_ref(PyUnicode_FromFormat("%S:%S", PyTuple_GET_ITEM(client, 0), PyTuple_GET_ITEM(client, 1)));
    } else {
        client_text = py_ref::borrow(names.empty_str);
    }
    std::string target;
    if (path != nullptr && PyUnicode_Check(path)) {
        // urllib.parse.quote(path): unreserved characters and "/" stay, the rest of the
        // UTF-8 bytes become %XX.
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
    py_ref target_text(PyUnicode_DecodeLatin1(target.data(), static_cast<Py_ssize_t>(target.size()), nullptr));
    py_ref status_obj(PyLong_FromLong(status));
    if (!client_text || !target_text || !status_obj) {
        PyErr_WriteUnraisable(_access_log.get());
        return;
    }
    py_ref r(PyObject_CallFunctionObjArgs(_access_log.get(), client_text.get(), method ? method : Py_None,
                                          target_text.get(), version ? version : Py_None, status_obj.get(), nullptr));
    if (!r) {
        PyErr_WriteUnraisable(_access_log.get());
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

void worker::on_request(http1::connection& c, const http1::request_head& head) {
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
    exchange* ex = exchange_start(*this, self_ref, c, scope.get(), head.expect_continue);
    if (ex == nullptr) {
        PyErr_WriteUnraisable(nullptr);
        c.abort();
        return;
    }
    ++_active;
    PyObject* exo = reinterpret_cast<PyObject*>(ex);
    py_ref receive(exchange_callable(*ex, "receive"));
    py_ref send(exchange_callable(*ex, "send"));
    py_ref coro;
    if (receive && send) {
        PyObject* args[] = {_app.get(), scope.get(), receive.get(), send.get(), exo};
        coro = py_ref(PyObject_Vectorcall(_run_asgi.get(), args, 5, nullptr));
    }
    py_ref task;
    if (coro && _eager_task_type) {
        PyObject* args[] = {coro.get(), _loop.get(), Py_True};
        task = py_ref(PyObject_Vectorcall(_eager_task_type.get(), args, 1, _eager_kwnames.get()));
    } else if (coro) {
        task = py_ref(PyObject_CallOneArg(_create_task.get(), coro.get()));
    }
    if (!task) {
        PyErr_WriteUnraisable(_run_asgi.get());
        py_ref keep = py_ref::borrow(exo);
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
    if (exchange* ex = current(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(ex));
        exchange_on_disconnect(*ex);
    }
}

void worker::on_drained(http1::connection& c) {
    if (exchange* ex = current(c)) {
        py_ref keep = py_ref::borrow(reinterpret_cast<PyObject*>(ex));
        exchange_on_drained(*ex);
    }
}

void worker::on_connection_closed(http1::connection& c) {
    scope_builder::forget_connection(c);
}

}  // namespace dbridge::asgi
