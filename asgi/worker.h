// One loop thread's server: a reactor and an HTTP/1.1 server whose requests run as ASGI
// apps on that thread's persistent asyncio loop. Two ways to share the thread with the
// loop: the loop's selector is the ring (ring_selector.h: the worker borrows the
// selector's reactor, whose completions are dispatched inside select()), or the
// reactor's wait descriptor is a reader on a stock loop (asyncio or uvloop), which then
// waits for both its own work and the sockets. Everything here runs on the loop's thread
// with the GIL held, in calls the loop makes.
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <memory>
#include <string>
#include <vector>

#include "http1/connection.h"
#include "io/reactor.h"
#include "ws/connection.h"
#include "ws/deflate.h"
#include "py_ref.h"
#include "ring_selector.h"
#include "scope_builder.h"
#include "tls/context.h"

namespace dbridge::asgi {

struct exchange;

// What WebSockets need from the worker (uvicorn's --ws-* options).
struct worker_ws_settings {
    bool enabled = true;         // --ws none: upgrade requests go to the app as plain HTTP
    std::size_t max_queue = 32;  // received messages the app has not taken before reading stops
    ws::deflate_config deflate;  // --ws-per-message-deflate
    bool date_header = true;     // for the 101 response, as for every response
    std::string default_headers;
};

struct worker_options {
    std::string io = "auto";
    std::string root_path;
    std::string scheme = "http";
    double keep_alive_timeout = 5.0;
    double header_timeout = 30.0;
    double send_timeout = 60.0;
    std::size_t limit_request_line = 8192;
    std::size_t limit_request_fields = 100;
    std::size_t limit_request_field_size = 32768;
    std::uint64_t max_body_size = 0;
    bool server_header = true;
    bool date_header = true;
    std::vector<std::pair<std::string, std::string>> default_headers;
    std::size_t limit_concurrency = 0;
    // --reset-contextvars: each app task runs in a fresh contextvars.Context instead of a
    // copy of the loop's.
    bool reset_contextvars = false;
    trusted_proxies proxies;  // --proxy-headers, --forwarded-allow-ips
    // Every listener speaks TLS under this context when it is set (--ssl-certfile).
    std::shared_ptr<const tls::context> tls;
    // WebSockets: --ws (anything but "none" serves them), --ws-max-size, --ws-max-queue,
    // --ws-ping-interval, --ws-ping-timeout, --ws-per-message-deflate.
    std::string ws = "auto";
    ws::connection_config ws_connection;
    std::size_t ws_max_queue = 32;
    bool ws_per_message_deflate = true;
};

class worker final : public http1::request_handler, public ws::message_handler {
public:
    // `ring`: the loop's ring selector (its Python object in `ring_object`), or null for
    // a stock loop, for which the worker makes a reactor of its own.
    worker(PyObject* app, PyObject* loop, PyObject* run_asgi, PyObject* state, PyObject* access_log,
           PyObject* warn, const worker_options& options, ring_selector* ring = nullptr,
           PyObject* ring_object = nullptr);
    ~worker() override;

    // ---- driven from Python -----------------------------------------------------------
    // `shared`: other processes accept on this socket too (see reactor::add_listener).
    void add_listener(int fd, bool shared = false);
    // Registers on a stock loop: the wait descriptor as a reader, and a periodic tick
    // that runs timeouts while the sockets are quiet (on the ring selector, select()
    // does both). `self` is this worker's Python object.
    void start(PyObject* self);
    void poll();
    void flush();
    void tick();
    void stop_accepting();
    void shutdown();
    void close_all();
    // See http1::server::disconnect_responding().
    void disconnect_responding();
    // Unregisters from the loop and drops the references that tie it to this worker.
    void detach_from_loop();

    const char* backend() const;
    bool on_ring_selector() const { return _ring_object.get() != nullptr; }
    const std::string& backend_reason() const { return _reactor->choice_reason(); }
    std::size_t active_requests() const { return _active; }
    std::size_t open_connections() const { return _reactor->open_streams(); }
    const io::reactor_stats& reactor_stats() const { return _reactor->stats(); }
    const http1::server_stats& server_stats() { return _server->stats(); }

    // ---- for exchanges --------------------------------------------------------------
    // Sends queued by the app go out once, after the loop's current batch of callbacks.
    void schedule_flush();
    PyObject* create_future();  // a new reference, or null with an error set
    void log_error(const char* message);
    void log_access(PyObject* scope, int status);
    // uvicorn's INFO line for a WebSocket handshake: "[accepted]", "403", a denial's status.
    void log_websocket(PyObject* scope, const char* outcome);
    bool access_log_enabled() const { return static_cast<bool>(_access_log); }
    void exchange_finished();
    const worker_ws_settings& ws_settings() const { return _ws_settings; }
    ws::connection_pool& ws_pool() { return _ws_pool; }

    // ---- http1::request_handler -------------------------------------------------------
    void on_request(http1::connection& c, const http1::request_head& head) override;
    void on_body(http1::connection& c, std::string_view chunk) override;
    void on_request_end(http1::connection& c) override;
    void on_disconnect(http1::connection& c) override;
    void on_drained(http1::connection& c) override;
    void on_connection_closed(http1::connection& c) override;

    // ---- ws::message_handler ------------------------------------------------------------
    void on_message(ws::connection& c, ws::message_kind kind, std::string_view payload) override;
    void on_close(ws::connection& c, std::uint16_t code, std::string_view reason) override;
    void on_drained(ws::connection& c) override;
    void on_released(ws::connection& c) override;

private:
    void reject_overload(http1::connection& c, PyObject* scope);
    void reject_handshake(http1::connection& c, int status, const char* reason);

    std::unique_ptr<io::reactor> _own_reactor;  // stock loop: ours; ring selector: null
    io::reactor* _reactor = nullptr;
    std::unique_ptr<http1::server> _server;
    scope_builder _scope;
    worker_ws_settings _ws_settings;
    ws::connection_pool _ws_pool;
    std::size_t _limit_concurrency;
    std::shared_ptr<const tls::context> _tls;  // shared with the Python TLSContext object
    std::size_t _active = 0;
    bool _flush_scheduled = false;
    bool _started = false;
    int _wait_fd = -1;

    PyObject* _self = nullptr;  // this worker's Python object (not a reference: it owns us)
    py_ref _ring_object;        // keeps the borrowed reactor alive
    py_ref _app;
    py_ref _loop;
    py_ref _run_asgi;
    py_ref _access_log;
    py_ref _warn;
    py_ref _error_logger_error;  // logging.getLogger("dbridge_asgi.error").error
    py_ref _error_logger_info;   // and .info
    py_ref _create_task;         // loop.create_task: used while the app has set a task factory
    py_ref _get_task_factory;    // loop.get_task_factory
    py_ref _task_type;           // asyncio.Task, called directly when there is no task factory (3.11+)
    py_ref _task_kwnames;        // ("loop", ["eager_start" on 3.12+], ["context" with --reset-contextvars])
    bool _reset_contextvars = false;
    py_ref _create_future;       // loop.create_future
    py_ref _call_soon;           // loop.call_soon
    py_ref _call_later;          // loop.call_later
    py_ref _flush_callback;      // self.flush
    py_ref _tick_callback;       // self.tick
    py_ref _tick_handle;
};

}  // namespace dbridge::asgi
