// dbridge_asgi._core: the C++ side of the package. Worker (one loop thread's server)
// is bound with pybind11, which is fine for calls made once per loop iteration; the
// per-request objects (Exchange, the ready awaitable) are raw C-API types.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <tuple>

#include "exchange.h"
#include "interned.h"
#include "io/reactor.h"
#include "ready_awaitable.h"
#include "ring_selector.h"
#include "tls/context.h"
#include "websocket.h"
#include "worker.h"

namespace py = pybind11;
using dbridge::asgi::ring_selector;
using dbridge::asgi::worker;
using dbridge::asgi::worker_options;

namespace {

// Config.trusted_proxies(): None (proxy headers off) or (everyone, hosts, networks,
// literals), addresses as packed bytes (4 or 16 long) so ipaddress did all the parsing.
dbridge::asgi::trusted_proxies trusted_proxies_from(const py::object& spec) {
    dbridge::asgi::trusted_proxies t;
    if (spec.is_none()) {
        return t;
    }
    auto [everyone, hosts, networks, literals] =
        spec.cast<std::tuple<bool, std::vector<std::pair<py::bytes, std::string>>,
                             std::vector<std::pair<py::bytes, py::bytes>>, std::vector<py::bytes>>>();
    auto copy_packed = [](const py::bytes& packed, std::array<unsigned char, 16>& out) {
        std::string b(packed);
        if (b.size() != 4 && b.size() != 16) {
            throw py::value_error("a packed address is 4 or 16 bytes long");
        }
        std::copy(b.begin(), b.end(), out.begin());
        return b.size() == 4 ? 4 : 6;
    };
    t.enabled = true;
    t.everyone = everyone;
    for (auto& [packed, zone] : hosts) {
        dbridge::asgi::ip_address ip;
        ip.version = copy_packed(packed, ip.bytes);
        ip.zone = zone;
        t.hosts.push_back(std::move(ip));
    }
    for (auto& [address, mask] : networks) {
        dbridge::asgi::ip_network net;
        net.version = copy_packed(address, net.address);
        copy_packed(mask, net.mask);
        t.networks.push_back(net);
    }
    for (auto& literal : literals) {
        t.literals.emplace_back(std::string(literal));
    }
    return t;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "dbridge-asgi core: io_uring/epoll reactor, HTTP/1.1 engine and the ASGI shim";
    m.attr("__version__") = DBRIDGE_VERSION;

    if (!dbridge::asgi::interned_init() || !dbridge::asgi::ready_awaitable_init(m.ptr()) ||
        !dbridge::asgi::exchange_type_init(m.ptr()) || !dbridge::asgi::websocket_type_init(m.ptr())) {
        throw py::error_already_set();
    }

    m.def(
        "probe_io",
        [] {
            dbridge::io::uring_probe probe;
            {
                py::gil_scoped_release released;
                probe = dbridge::io::probe_uring();
            }
            py::dict result;
            result["uring"] = probe.usable;
            result["reason"] = probe.reason;
            return result;
        },
        "Whether io_uring is usable here, and if not, why.");

    m.def(
        "select_backend",
        [](const std::string& choice) {
            dbridge::io::reactor_config config;
            config.io = dbridge::io::parse_backend_choice(choice);
            auto reactor = dbridge::io::reactor::create(config);
            return py::make_tuple(dbridge::io::backend_name(reactor->kind()), reactor->choice_reason());
        },
        py::arg("choice") = "auto",
        "Create a reactor as --io CHOICE would and return (backend, reason it was chosen).");

    py::register_exception<dbridge::tls::context_error>(m, "TLSConfigError", PyExc_ValueError);
    py::class_<dbridge::tls::context, std::shared_ptr<dbridge::tls::context>>(
        m, "TLSContext", "A server TLS configuration (OpenSSL), loaded once from the --ssl-* files.")
        .def(py::init([](const std::string& certfile, const std::string& keyfile, const std::string& password,
                         const std::string& ca_certs, int cert_reqs, const std::string& ciphers, int version) {
                 dbridge::tls::context_options o;
                 o.certfile = certfile;
                 o.keyfile = keyfile;
                 o.keyfile_password = password;
                 o.ca_certs = ca_certs;
                 o.cert_reqs = static_cast<dbridge::tls::client_cert>(cert_reqs);
                 o.ciphers = ciphers;
                 o.version = version;
                 return std::make_shared<dbridge::tls::context>(o);
             }),
             py::arg("certfile"), py::arg("keyfile") = "", py::arg("password") = "", py::arg("ca_certs") = "",
             py::arg("cert_reqs") = 0, py::arg("ciphers") = "", py::arg("version") = 17);

    py::class_<ring_selector>(m, "Ring",
                              "This thread's io_uring reactor as a selector (see dbridge_asgi.loops).")
        .def(py::init<>())
        .def("watch", [](ring_selector& r, int fd, unsigned events, py::object key) { r.watch(fd, events, key.ptr()); },
             py::arg("fd"), py::arg("events"), py::arg("key"))
        .def("unwatch", &ring_selector::unwatch, py::arg("fd"))
        .def("rekey", [](ring_selector& r, int fd, py::object key) { r.rekey(fd, key.ptr()); }, py::arg("fd"),
             py::arg("key"))
        .def(
            "select",
            [](ring_selector& r, py::object timeout) {
                PyObject* events = r.select(timeout.ptr());
                if (events == nullptr) {
                    throw py::error_already_set();
                }
                return py::reinterpret_steal<py::list>(events);
            },
            py::arg("timeout") = py::none())
        .def_property_readonly("watched", &ring_selector::watched);

    py::class_<worker>(m, "Worker")
        .def(py::init([](py::object app, py::object loop, py::object run_asgi, const std::string& io,
                         const std::string& root_path, py::object state, py::object access_log,
                         double keep_alive_timeout, double header_timeout, std::size_t limit_request_line,
                         std::size_t limit_request_fields, std::size_t limit_request_field_size,
                         std::uint64_t max_body_size, bool server_header, bool date_header,
                         std::vector<std::pair<py::bytes, py::bytes>> default_headers,
                         std::size_t limit_concurrency, py::object warn, const std::string& scheme,
                         py::object ring, py::object trusted_proxies, py::object tls, bool reset_contextvars,
                         const std::string& ws, std::uint64_t ws_max_size, std::size_t ws_max_queue,
                         py::object ws_ping_interval, py::object ws_ping_timeout, bool ws_per_message_deflate,
                         double send_timeout) {
                 worker_options o;
                 // None (uvicorn's way to turn a WebSocket timer off) and 0 both mean off.
                 auto seconds = [](const py::object& v) {
                     return std::chrono::milliseconds(
                         v.is_none() ? 0 : static_cast<long long>(v.cast<double>() * 1000.0));
                 };
                 o.ws = ws;
                 o.ws_connection.max_message_size = ws_max_size;
                 o.ws_connection.ping_interval = seconds(ws_ping_interval);
                 o.ws_connection.ping_timeout = seconds(ws_ping_timeout);
                 o.ws_max_queue = ws_max_queue;
                 o.ws_per_message_deflate = ws_per_message_deflate;
                 o.io = io;
                 o.root_path = root_path;
                 o.scheme = scheme;
                 o.keep_alive_timeout = keep_alive_timeout;
                 o.header_timeout = header_timeout;
                 o.send_timeout = send_timeout;
                 o.limit_request_line = limit_request_line;
                 o.limit_request_fields = limit_request_fields;
                 o.limit_request_field_size = limit_request_field_size;
                 o.max_body_size = max_body_size;
                 o.server_header = server_header;
                 o.date_header = date_header;
                 for (auto& [name, value] : default_headers) {
                     o.default_headers.emplace_back(std::string(name), std::string(value));
                 }
                 o.limit_concurrency = limit_concurrency;
                 o.reset_contextvars = reset_contextvars;
                 o.proxies = trusted_proxies_from(trusted_proxies);
                 if (!tls.is_none()) {
                     o.tls = tls.cast<std::shared_ptr<dbridge::tls::context>>();
                 }
                 ring_selector* selector = ring.is_none() ? nullptr : ring.cast<ring_selector*>();
                 return new worker(app.ptr(), loop.ptr(), run_asgi.ptr(), state.ptr(), access_log.ptr(), warn.ptr(),
                                   o, selector, selector != nullptr ? ring.ptr() : nullptr);
             }),
             py::arg("app"), py::arg("loop"), py::arg("run_asgi"), py::arg("io") = "auto",
             py::arg("root_path") = "", py::arg("state") = py::none(), py::arg("access_log") = py::none(),
             py::arg("keep_alive_timeout") = 5.0, py::arg("header_timeout") = 30.0,
             py::arg("limit_request_line") = 8192, py::arg("limit_request_fields") = 100,
             py::arg("limit_request_field_size") = 32768, py::arg("max_body_size") = 0,
             py::arg("server_header") = true, py::arg("date_header") = true,
             py::arg("default_headers") = std::vector<std::pair<py::bytes, py::bytes>>{},
             py::arg("limit_concurrency") = 0, py::arg("warn") = py::none(), py::arg("scheme") = "http",
             py::arg("ring") = py::none(), py::arg("trusted_proxies") = py::none(), py::arg("tls") = py::none(),
             py::arg("reset_contextvars") = false, py::arg("ws") = "auto", py::arg("ws_max_size") = 16777216,
             py::arg("ws_max_queue") = 32, py::arg("ws_ping_interval") = 20.0, py::arg("ws_ping_timeout") = 20.0,
             py::arg("ws_per_message_deflate") = true, py::arg("send_timeout") = 60.0)
        .def_property_readonly("backend", &worker::backend)
        .def_property_readonly("backend_reason", &worker::backend_reason)
        .def_property_readonly("on_ring_selector", &worker::on_ring_selector)
        .def_property_readonly("active_requests", &worker::active_requests)
        .def_property_readonly("open_connections", &worker::open_connections)
        .def("add_listener", [](worker& w, int fd, const std::string&, bool shared) { w.add_listener(fd, shared); },
             py::arg("fd"), py::arg("scheme") = "http", py::arg("shared") = false)
        .def("start", [](py::object self) { self.cast<worker&>().start(self.ptr()); })
        .def("poll", &worker::poll)
        .def("flush", &worker::flush)
        .def("tick", &worker::tick)
        .def("stop_accepting", &worker::stop_accepting)
        .def("shutdown", &worker::shutdown)
        .def("close_all", &worker::close_all)
        .def("disconnect_responding", &worker::disconnect_responding)
        .def("detach", &worker::detach_from_loop)
        .def("stats", [](worker& w) {
            py::dict d;
            const auto& r = w.reactor_stats();
            const auto& s = w.server_stats();
            d["accepted"] = r.accepted;
            d["closed"] = r.closed;
            d["open_connections"] = r.open_streams;
            d["recv_rearmed"] = r.recv_rearmed;
            d["no_buffers"] = r.no_buffers;
            d["accept_errors"] = r.accept_errors;
            d["tls_errors"] = r.tls_errors;
            d["requests"] = s.requests;
            d["rejected"] = s.rejected;
            d["timeouts"] = s.timeouts;
            d["send_timeouts"] = s.send_timeouts;
            d["active_requests"] = w.active_requests();
            return d;
        });
}
