// dbridge_asgi._core: the C++ side of the package. For now it reports on the core
// (version, which I/O backends this machine allows); the ASGI shim grows here.
#include <pybind11/pybind11.h>

#include "io/reactor.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "dbridge-asgi core: io_uring/epoll reactor and HTTP/1.1 engine";
    m.attr("__version__") = DBRIDGE_VERSION;

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
}
