#include "scope_builder.h"

#include <sys/socket.h>

#include <cstring>
#include <stdexcept>
#include <utility>

#include "interned.h"
#include "net/listener.h"
#include "scope_fields.h"

namespace dbridge::asgi {

namespace {

// (host, port) tuples for the connection's two ends, made on its first request.
struct connection_values {
    PyObject* client;  // tuple or None
    PyObject* server;  // tuple or None
    bool from_trusted_proxy;  // X-Forwarded-* are read on this connection
};

PyObject* address_tuple(const sockaddr_storage& address) {
    if (address.ss_family == AF_INET || address.ss_family == AF_INET6) {
        std::string host = net::address_text(address);
        return Py_BuildValue("(s#i)", host.data(), static_cast<Py_ssize_t>(host.size()),
                             static_cast<int>(net::address_port(address)));
    }
    if (address.ss_family == AF_UNIX) {
        // uvicorn: the server of a Unix socket is (path, None); a client has no address.
        std::string path = net::address_text(address);
        if (path.empty()) {
            Py_RETURN_NONE;
        }
        return Py_BuildValue("(s#O)", path.data(), static_cast<Py_ssize_t>(path.size()), Py_None);
    }
    Py_RETURN_NONE;
}

connection_values* values_for(http1::connection& c, const trusted_proxies& proxies) {
    auto* v = static_cast<connection_values*>(c.connection_state);
    if (v == nullptr) {
        v = new connection_values{};
        io::stream& s = c.stream();
        v->from_trusted_proxy = peer_is_trusted(proxies, s.peer_address());
        v->client = address_tuple(s.peer_address());
        v->server = address_tuple(s.local_address());
        if (s.peer_address().ss_family == AF_UNIX) {
            Py_XDECREF(v->client);
            v->client = Py_NewRef(Py_None);
        }
        // An address that cannot be expressed is reported as None, never as a failure.
        if (v->client == nullptr || v->server == nullptr) {
            PyErr_Clear();
            if (v->client == nullptr) {
                v->client = Py_NewRef(Py_None);
            }
            if (v->server == nullptr) {
                v->server = Py_NewRef(Py_None);
            }
        }
        c.connection_state = v;
    }
    return v;
}

PyObject* method_object(std::string_view m) {
    PyObject* known = nullptr;
    switch (m.size()) {
    case 3:
        known = m == "GET" ? names.get : (m == "PUT" ? names.put : nullptr);
        break;
    case 4:
        known = m == "POST" ? names.post : (m == "HEAD" ? names.head : nullptr);
        break;
    case 5:
        known = m == "PATCH" ? names.patch : nullptr;
        break;
    case 6:
        known = m == "DELETE" ? names.del : nullptr;
        break;
    case 7:
        known = m == "OPTIONS" ? names.options : nullptr;
        break;
    default:
        break;
    }
    if (known != nullptr) {
        return Py_NewRef(known);
    }
    return PyUnicode_DecodeASCII(m.data(), static_cast<Py_ssize_t>(m.size()), "strict");
}

// uvicorn: path = unquote(raw_path), i.e. %XX decoded, then UTF-8 with replacement.
PyObject* decode_path(std::string_view raw) {
    if (raw.find('%') == std::string_view::npos) {
        return PyUnicode_DecodeASCII(raw.data(), static_cast<Py_ssize_t>(raw.size()), "strict");
    }
    // Decoding never grows: a path that fits the stack buffer costs no allocation.
    char local[512];
    std::string large;
    char* out = local;
    if (raw.size() > sizeof(local)) {
        large.resize(raw.size());
        out = large.data();
    }
    std::size_t size = percent_decode(raw, out);
    return PyUnicode_DecodeUTF8(out, static_cast<Py_ssize_t>(size), "replace");
}

}  // namespace

scope_builder::scope_builder(std::string root_path, std::string scheme, PyObject* state, trusted_proxies proxies)
    : _root_path(PyUnicode_FromStringAndSize(root_path.data(), static_cast<Py_ssize_t>(root_path.size()))),
      _root_path_bytes(PyBytes_FromStringAndSize(root_path.data(), static_cast<Py_ssize_t>(root_path.size()))),
      _has_root_path(!root_path.empty()),
      _scheme(PyUnicode_InternFromString(scheme.c_str())),
      _state(py_ref::borrow(state)),
      _proxies(std::move(proxies)),
      _scope_template(PyDict_New()),
      _asgi_template(PyDict_New()) {
    if (!_root_path || !_root_path_bytes || !_scheme || !_scope_template || !_asgi_template) {
        throw std::runtime_error("cannot create the scope template");
    }
    // uvicorn's key order; None where each request puts its own value.
    PyObject* d = _scope_template.get();
    const std::pair<PyObject*, PyObject*> entries[] = {
        {names.type, names.http},         {names.asgi, Py_None},         {names.http_version, names.http_1_1},
        {names.server, Py_None},          {names.client, Py_None},       {names.scheme, _scheme.get()},
        {names.root_path, _root_path.get()}, {names.headers, Py_None},  {names.state, Py_None},
        {names.method, Py_None},          {names.path, Py_None},         {names.raw_path, Py_None},
        {names.query_string, names.empty_bytes}, {names.extensions, Py_None},
    };
    for (const auto& [key, value] : entries) {
        if (PyDict_SetItem(d, key, value) < 0) {
            throw std::runtime_error("cannot create the scope template");
        }
    }
    if (PyDict_SetItem(_asgi_template.get(), names.version, names.version_3_0) < 0 ||
        PyDict_SetItem(_asgi_template.get(), names.spec_version, names.spec_2_3) < 0) {
        throw std::runtime_error("cannot create the scope template");
    }
}

void scope_builder::forget_connection(http1::connection& c) {
    auto* v = static_cast<connection_values*>(c.connection_state);
    if (v != nullptr) {
        Py_XDECREF(v->client);
        Py_XDECREF(v->server);
        delete v;
        c.connection_state = nullptr;
    }
}

PyObject* scope_builder::headers_list(const http1::request_head& head) {
    Py_ssize_t count = static_cast<Py_ssize_t>(head.header_count());
    PyObject* list = PyList_New(count);
    if (list == nullptr) {
        return nullptr;
    }
    for (Py_ssize_t i = 0; i < count; ++i) {
        http1::header_field f = head.header(static_cast<std::size_t>(i));
        // Lower-cased straight into the new bytes object.
        PyObject* name = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(f.name.size()));
        if (name == nullptr) {
            Py_DECREF(list);
            return nullptr;
        }
        lower_case_field_name(f.name, PyBytes_AS_STRING(name));
        PyObject* value = PyBytes_FromStringAndSize(f.value.data(), static_cast<Py_ssize_t>(f.value.size()));
        PyObject* pair = value != nullptr ? PyTuple_New(2) : nullptr;
        if (pair == nullptr) {
            Py_DECREF(name);
            Py_XDECREF(value);
            Py_DECREF(list);
            return nullptr;
        }
        PyTuple_SET_ITEM(pair, 0, name);
        PyTuple_SET_ITEM(pair, 1, value);
        PyList_SET_ITEM(list, i, pair);
    }
    return list;
}

PyObject* scope_builder::build(http1::connection& c, const http1::request_head& head) {
    connection_values* conn = values_for(c, _proxies);
    // Borrowed; replaced only for a request from a trusted proxy that sent X-Forwarded-*.
    PyObject* client = conn->client;
    PyObject* scheme = _scheme.get();
    py_ref forwarded_client, forwarded_scheme;
    if (conn->from_trusted_proxy) {
        std::string_view proto;
        if (!apply_forwarded_headers(_proxies, head, forwarded_client, proto)) {
            return nullptr;
        }
        if (forwarded_client) {
            client = forwarded_client.get();
        }
        if (!proto.empty()) {
            forwarded_scheme =
                py_ref(PyUnicode_FromStringAndSize(proto.data(), static_cast<Py_ssize_t>(proto.size())));
            if (!forwarded_scheme) {
                return nullptr;
            }
            scheme = forwarded_scheme.get();
        }
    }
    auto [raw_path, query] = split_target(head.target);

    py_ref scope(PyDict_Copy(_scope_template.get()));
    py_ref asgi(PyDict_Copy(_asgi_template.get()));
    py_ref headers(headers_list(head));
    py_ref method(method_object(head.method));
    py_ref path(decode_path(raw_path));
    py_ref raw(PyBytes_FromStringAndSize(raw_path.data(), static_cast<Py_ssize_t>(raw_path.size())));
    py_ref state(_state ? PyDict_Copy(_state.get()) : PyDict_New());
    py_ref extensions(PyDict_New());
    py_ref pathsend(PyDict_New());
    py_ref query_bytes(query.empty() ? Py_NewRef(names.empty_bytes)
                                     : PyBytes_FromStringAndSize(query.data(), static_cast<Py_ssize_t>(query.size())));
    if (!scope || !asgi || !headers || !method || !path || !raw || !state || !extensions || !pathsend ||
        !query_bytes) {
        return nullptr;
    }
    if (_has_root_path) {
        // uvicorn 0.26+: root_path is part of path and raw_path.
        path = py_ref(PyUnicode_Concat(_root_path.get(), path.get()));
        PyObject* joined = PyBytes_FromStringAndSize(nullptr, PyBytes_GET_SIZE(_root_path_bytes.get()) +
                                                                   PyBytes_GET_SIZE(raw.get()));
        if (!path || joined == nullptr) {
            Py_XDECREF(joined);
            return nullptr;
        }
        std::memcpy(PyBytes_AS_STRING(joined), PyBytes_AS_STRING(_root_path_bytes.get()),
                    PyBytes_GET_SIZE(_root_path_bytes.get()));
        std::memcpy(PyBytes_AS_STRING(joined) + PyBytes_GET_SIZE(_root_path_bytes.get()), PyBytes_AS_STRING(raw.get()),
                    PyBytes_GET_SIZE(raw.get()));
        raw = py_ref(joined);
    }
    // Only the values that differ from the template: each is a lookup of an existing key.
    PyObject* d = scope.get();
    if (PyDict_SetItem(extensions.get(), names.http_response_pathsend, pathsend.get()) < 0 ||
        PyDict_SetItem(d, names.asgi, asgi.get()) < 0 ||
        (head.version_minor != 1 && PyDict_SetItem(d, names.http_version, names.http_1_0) < 0) ||
        PyDict_SetItem(d, names.server, conn->server) < 0 || PyDict_SetItem(d, names.client, client) < 0 ||
        (scheme != _scheme.get() && PyDict_SetItem(d, names.scheme, scheme) < 0) ||
        PyDict_SetItem(d, names.headers, headers.get()) < 0 || PyDict_SetItem(d, names.state, state.get()) < 0 ||
        PyDict_SetItem(d, names.method, method.get()) < 0 || PyDict_SetItem(d, names.path, path.get()) < 0 ||
        PyDict_SetItem(d, names.raw_path, raw.get()) < 0 ||
        (!query.empty() && PyDict_SetItem(d, names.query_string, query_bytes.get()) < 0) ||
        PyDict_SetItem(d, names.extensions, extensions.get()) < 0) {
        return nullptr;
    }
    return scope.release();
}

}  // namespace dbridge::asgi
