// Interned strings and constant objects the shim uses for every scope and message, made
// once at module import: building a dict with these keys costs no string creation and
// no hashing.
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

namespace dbridge::asgi {

struct interned_names {
    // scope keys
    PyObject* type;
    PyObject* asgi;
    PyObject* version;
    PyObject* spec_version;
    PyObject* http_version;
    PyObject* server;
    PyObject* client;
    PyObject* scheme;
    PyObject* method;
    PyObject* root_path;
    PyObject* path;
    PyObject* raw_path;
    PyObject* query_string;
    PyObject* headers;
    PyObject* state;
    PyObject* extensions;
    // message keys
    PyObject* body;
    PyObject* more_body;
    PyObject* status;
    // values
    PyObject* http;
    PyObject* version_3_0;
    PyObject* spec_2_3;
    PyObject* http_1_1;
    PyObject* http_1_0;
    PyObject* http_request;
    PyObject* http_disconnect;
    PyObject* http_response_start;
    PyObject* http_response_body;
    PyObject* http_response_pathsend;
    PyObject* empty_bytes;
    PyObject* empty_str;
    // common methods, so the scope's "method" is shared rather than rebuilt
    PyObject* get;
    PyObject* post;
    PyObject* put;
    PyObject* del;
    PyObject* head;
    PyObject* patch;
    PyObject* options;
    // method names
    PyObject* set_result;
    PyObject* done;
};

extern interned_names names;

bool interned_init();

}  // namespace dbridge::asgi
