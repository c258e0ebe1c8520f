#include "interned.h"

namespace dbridge::asgi {

interned_names names;

namespace {

bool intern(PyObject*& slot, const char* text) {
    slot = PyUnicode_InternFromString(text);
    return slot != nullptr;
}

}  // namespace

bool interned_init() {
    bool ok = intern(names.type, "type") && intern(names.asgi, "asgi") && intern(names.version, "version") &&
              intern(names.spec_version, "spec_version") && intern(names.http_version, "http_version") &&
              intern(names.server, "server") && intern(names.client, "client") &&
              intern(names.scheme, "scheme") && intern(names.method, "method") &&
              intern(names.root_path, "root_path") && intern(names.path, "path") &&
              intern(names.raw_path, "raw_path") && intern(names.query_string, "query_string") &&
              intern(names.headers, "headers") && intern(names.state, "state") &&
              intern(names.extensions, "extensions") && intern(names.body, "body") &&
              intern(names.more_body, "more_body") && intern(names.status, "status") &&
              intern(names.http, "http") && intern(names.version_3_0, "3.0") && intern(names.spec_2_3, "2.3") &&
              intern(names.http_1_1, "1.1") && intern(names.http_1_0, "1.0") &&
              intern(names.http_request, "http.request") && intern(names.http_disconnect, "http.disconnect") &&
              intern(names.http_response_start, "http.response.start") &&
              intern(names.http_response_body, "http.response.body") &&
              intern(names.http_response_pathsend, "http.response.pathsend") && intern(names.empty_str, "") &&
              intern(names.get, "GET") && intern(names.post, "POST") && intern(names.put, "PUT") &&
              intern(names.del, "DELETE") && intern(names.head, "HEAD") && intern(names.patch, "PATCH") &&
              intern(names.options, "OPTIONS") && intern(names.set_result, "set_result") &&
              intern(names.done, "done");
    if (!ok) {
        return false;
    }
    names.empty_bytes = PyBytes_FromStringAndSize("", 0);
    return names.empty_bytes != nullptr;
}

}  // namespace dbridge::asgi
