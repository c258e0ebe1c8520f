// The waiting side of receive(), shared by the HTTP exchange and the WebSocket: the
// futures of receive() calls that wait, and the awaitable such a call returns.
//
// A waiter's future carries no message. It only wakes the waiter, which takes its message
// from its owner when its task actually resumes (as uvicorn's receive does after its
// event). So a task cancelled between the wake-up and its resumption loses nothing (the
// message stays with the owner for the next receive()), and several waiters share
// whatever there is: one woken with nothing left for it waits again.
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

namespace dbridge::asgi {

class worker;

// Completes `waiter` with `value` (None when null) and clears the slot. A future the app
// cancelled meanwhile refuses the result; that is not an error here.
void resolve(PyObject*& waiter, PyObject* value);

// True when the future is done (completed or cancelled), or cannot be asked.
bool future_done(PyObject* future);

// A new future appended to `waiters` (a list, made on first use): a new reference, or
// null with an error set. Futures the app cancelled are dropped from the list first: an
// app polling receive() with a timeout leaves one per poll.
PyObject* add_waiter(worker& owner, PyObject*& waiters);

// Wakes every waiter in `waiters` and clears the slot.
void wake_receivers(PyObject*& waiters);

// Where a waiting receive() gets its message: `owner` is the exchange or the WebSocket.
struct receive_source {
    // The next message: a new reference, or null without an error when there is none yet.
    PyObject* (*take)(PyObject* owner);
    // add_waiter() on the owner's list.
    PyObject* (*wait)(PyObject* owner);
};

// Registers the awaitable's type; call once from module init.
bool receive_wait_init();

// The awaitable of a receive() that has to wait on `owner` (a new reference).
PyObject* receive_wait_new(PyObject* owner, const receive_source& source);

}  // namespace dbridge::asgi
