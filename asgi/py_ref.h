// An owning PyObject reference for the shim's raw C-API code (the hot path does not go
// through pybind11's wrappers).
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <utility>

namespace dbridge::asgi {

class py_ref {
public:
    py_ref() = default;
    // Takes ownership of a new reference (may be null after a failed call).
    explicit py_ref(PyObject* owned) : _p(owned) {}
    static py_ref borrow(PyObject* borrowed) {
        Py_XINCREF(borrowed);
        return py_ref(borrowed);
    }
    py_ref(const py_ref& other) : _p(other._p) { Py_XINCREF(_p); }
    py_ref(py_ref&& other) noexcept : _p(std::exchange(other._p, nullptr)) {}
    py_ref& operator=(py_ref other) noexcept {
        std::swap(_p, other._p);
        return *this;
    }
    ~py_ref() { Py_XDECREF(_p); }

    PyObject* get() const { return _p; }
    PyObject* release() { return std::exchange(_p, nullptr); }
    explicit operator bool() const { return _p != nullptr; }

private:
    PyObject* _p = nullptr;
};

}  // namespace dbridge::asgi
