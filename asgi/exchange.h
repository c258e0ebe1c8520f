// One HTTP request/response cycle as the app sees it: the `receive` and `send` callables
// and `finish`, which run_asgi calls when the app returns or raises. A Python object,
// referenced by the app's task and, until the response is complete or the client is
// gone, by its connection. That reference matters: asyncio holds tasks weakly, and a
// task waiting in receive() is reachable only through the exchange's future, so the
// connection's reference is what keeps a waiting app alive. An exchange that dies
// unfinished settles itself (exchange_finalize).
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <string_view>

#include "http1/connection.h"

namespace dbridge::asgi {

class worker;

struct exchange {
    PyObject_HEAD
    worker* owner;
    PyObject* owner_ref;     // keeps the Worker alive while the app holds this exchange
    http1::connection* conn;  // null once detached (response complete, or client gone)
    PyObject* scope;         // for the access log
    PyObject* body;          // pending request body: null, bytes, or a list of bytes
    Py_ssize_t body_size;
    int file_fd;             // the file of an http.response.pathsend still being sent, or -1
    PyObject* receive_waiters;  // a list of Futures the app awaits in receive(), or null
    PyObject* send_waiter;     // a Future the app awaits in send() (backpressure), or null
    bool request_complete;
    bool final_body_delivered;
    bool expect_continue;
    bool response_started;
    bool response_complete;
    bool disconnected;
    bool finished;
};

bool exchange_type_init(PyObject* module);

// A new exchange for the request that just started on `c`; the connection takes a
// reference (c.app_state). Returns a borrowed pointer, or null with an error set.
exchange* exchange_start(worker& owner, PyObject* owner_ref, http1::connection& c, PyObject* scope,
                         bool expect_continue);

// The app's `receive` ("receive") or `send` ("send") callable: a new reference.
PyObject* exchange_callable(exchange& ex, const char* which);

void exchange_on_body(exchange& ex, std::string_view chunk);
void exchange_on_request_end(exchange& ex);
void exchange_on_disconnect(exchange& ex);
void exchange_on_drained(exchange& ex);

}  // namespace dbridge::asgi
