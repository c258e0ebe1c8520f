// Builds the ASGI HTTP scope (spec 2.3 as uvicorn gives it, plus extensions) for each
// request: a fresh plain dict the app may mutate, with interned keys, values computed
// once per connection where they can be (client, server), and nothing shared that an
// app could change for the next request.
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <string>

#include "http1/connection.h"
#include "proxy_headers.h"
#include "py_ref.h"

namespace dbridge::asgi {

class scope_builder {
public:
    scope_builder(std::string root_path, std::string scheme, PyObject* state, trusted_proxies proxies = {});

    // A new reference, or null with a Python error set.
    PyObject* build(http1::connection& c, const http1::request_head& head);

    // Drops what build() cached on the connection.
    static void forget_connection(http1::connection& c);

private:
    PyObject* headers_list(const http1::request_head& head);

    py_ref _root_path;        // str
    py_ref _root_path_bytes;  // bytes
    bool _has_root_path;
    py_ref _scheme;
    py_ref _state;  // the lifespan state dict: each scope gets a shallow copy
    trusted_proxies _proxies;
    // The scope's keys in their order, with the values every request shares; copying
    // it clones the dict's key table in one step, where inserting fourteen keys into a
    // new dict hashes and probes each and resizes the table twice.
    py_ref _scope_template;
    py_ref _asgi_template;  // {"version": "3.0", "spec_version": "2.3"}
};

}  // namespace dbridge::asgi
