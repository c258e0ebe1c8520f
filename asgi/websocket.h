// One WebSocket as the app sees it (ASGI websocket spec 2.4, as uvicorn's default
// websockets-sansio protocol behaves): `receive` gives websocket.connect, then
// websocket.receive messages, then websocket.disconnect; `send` takes websocket.accept
// (the 101 response, after which the socket is a ws::connection), websocket.send,
// websocket.close, or before the accept a denial (websocket.close -> 403, or
// websocket.http.response.start/body). A Python object like the HTTP exchange, with the
// same reference rule: whoever owns the socket (the http1 connection before the
// handshake, the ws::connection after it) holds a reference until it lets go.
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <cstdint>
#include <string_view>

#include "http1/connection.h"
#include "ws/connection.h"

namespace dbridge::asgi {

class worker;
struct websocket;

bool websocket_type_init(PyObject* module);
bool is_websocket(const void* app_state);

// Where the app's WebSocket starts: the request on `c` asked for the upgrade and
// passed ws::parse_upgrade(). `scope` is the HTTP scope of the request, made into the
// WebSocket scope here. The connection takes a reference (c.app_state). Returns a
// borrowed pointer, or null with an error set.
websocket* websocket_start(worker& owner, PyObject* owner_ref, http1::connection& c, PyObject* scope,
                           const ws::upgrade_request& request);

// The app's `receive` ("receive") or `send` ("send") callable: a new reference.
PyObject* websocket_callable(websocket& w, const char* which);

// From the http1 connection, before the handshake completed.
void websocket_on_http_disconnect(websocket& w);
void websocket_on_http_drained(websocket& w);

// From the ws::connection, after it.
void websocket_on_message(websocket& w, ws::message_kind kind, std::string_view payload);
void websocket_on_close(websocket& w, std::uint16_t code, std::string_view reason);
void websocket_on_drained(websocket& w);
void websocket_on_released(websocket& w);

// Graceful shutdown: an open WebSocket is closed with 1012 (service restart) and the app
// gets websocket.disconnect with that code, as uvicorn does.
void websocket_shutdown(websocket& w);

}  // namespace dbridge::asgi
