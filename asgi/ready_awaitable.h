// An awaitable that is already complete: `await receive()` / `await send()` when nothing
// has to wait. Awaiting it costs no future, no loop iteration and, on Python 3.10+, no
// StopIteration object (am_send hands the result straight back).
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

namespace dbridge::asgi {

// Registers the type; call once from module init.
bool ready_awaitable_init(PyObject* module);

// A new awaitable whose result is `result` (borrowed; None when null).
PyObject* ready_awaitable_new(PyObject* result);

}  // namespace dbridge::asgi
