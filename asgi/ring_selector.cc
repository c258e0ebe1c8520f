#include "ring_selector.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <stdexcept>

namespace dbridge::asgi {

namespace {

// The longest a select() sleeps: Python runs signal handlers only between bytecodes, so a
// signal that lands just before the wait is handled at the latest this much later.
constexpr int max_wait_ms = 250;

// selectors.EVENT_READ / EVENT_WRITE.
constexpr unsigned event_read = 1;
constexpr unsigned event_write = 2;

unsigned poll_mask(unsigned events) {
    return ((events & event_read) != 0 ? POLLIN : 0) | ((events & event_write) != 0 ? POLLOUT : 0);
}

// As selectors.EpollSelector reads epoll events: anything but "readable" (POLLOUT,
// POLLERR, POLLHUP) wakes a writer, anything but "writable" wakes a reader, so errors
// and hang-ups reach whichever callback will see them.
unsigned selector_events(int revents) {
    unsigned events = 0;
    if ((revents & ~POLLIN) != 0) {
        events |= event_write;
    }
    if ((revents & ~POLLOUT) != 0) {
        events |= event_read;
    }
    return events;
}

template <typename T>
void erase_value(std::vector<T*>& v, T* value) {
    v.erase(std::remove(v.begin(), v.end(), value), v.end());
}

}  // namespace

struct ring_selector::loop_fd final : io::fd_watch {
    ring_selector* owner = nullptr;
    unsigned selected = 0;  // EVENT_READ | EVENT_WRITE, as registered
    py_ref key;
    bool registered = true;
    int result = 0;

    void on_poll(int res) override { owner->on_poll(*this, res); }
};

ring_selector::ring_selector() {
    io::reactor_config config;
    config.io = io::backend_choice::uring;
    auto r = io::reactor::create(config);
    _reactor.reset(static_cast<io::uring_reactor*>(r.release()));
    _reactor->set_wait_guard(&_gil);
}

ring_selector::~ring_selector() {
    // The ring goes first: no completion can reach a watch after this.
    _reactor.reset();
}

void ring_selector::watch(int fd, unsigned events, PyObject* key) {
    unwatch(fd);  // modify(): a fresh poll with the new mask
    auto w = std::make_unique<loop_fd>();
    w->owner = this;
    w->fd = fd;
    w->events = poll_mask(events);
    w->selected = events;
    w->key = py_ref::borrow(key);
    _unarmed.push_back(w.get());
    _watches[fd] = std::move(w);
}

void ring_selector::unwatch(int fd) {
    auto it = _watches.find(fd);
    if (it == _watches.end()) {
        return;
    }
    std::unique_ptr<loop_fd> w = std::move(it->second);
    _watches.erase(it);
    erase_value(_unarmed, w.get());
    erase_value(_ready, w.get());
    w->registered = false;
    w->key = py_ref();
    if (w->in_kernel) {
        _reactor->unwatch(*w);
        _retired.push_back(std::move(w));  // freed when its poll comes back
    }
}

void ring_selector::rekey(int fd, PyObject* key) {
    auto it = _watches.find(fd);
    if (it != _watches.end()) {
        it->second->key = py_ref::borrow(key);
    }
}

void ring_selector::on_poll(loop_fd& w, int result) {
    if (!w.registered) {
        auto it = std::find_if(_retired.begin(), _retired.end(), [&](const auto& p) { return p.get() == &w; });
        if (it != _retired.end()) {
            _retired.erase(it);
        }
        return;
    }
    if (result == -ECANCELED) {
        _unarmed.push_back(&w);  // not ours (the ring was torn down under it): try again
        return;
    }
    w.result = result;
    _ready.push_back(&w);
}

PyObject* ring_selector::select(PyObject* timeout) {
    int timeout_ms = -1;
    if (timeout != Py_None) {
        double seconds = PyFloat_AsDouble(timeout);
        if (seconds == -1.0 && PyErr_Occurred()) {
            return nullptr;
        }
        // Rounded up: waking before asyncio's next timer is due would only spin.
        timeout_ms = seconds <= 0 ? 0 : static_cast<int>(std::min(std::ceil(seconds * 1000.0), 86400000.0));
    }
    for (loop_fd* w : _unarmed) {
        if (!w->in_kernel) {
            _reactor->watch(*w);
        }
    }
    _unarmed.clear();
    if (!_ready.empty()) {
        timeout_ms = 0;  // completions reaped outside select() (a worker's own poll)
    }
    if (timeout_ms != 0) {
        // A signal that arrived since the interpreter last looked would otherwise wait
        // for the next completion: run its handler now. What arrives between this check
        // and the kernel's wait is covered by the bound on the wait below.
        if (PyErr_CheckSignals() < 0) {
            return nullptr;
        }
        if (timeout_ms < 0 || timeout_ms > max_wait_ms) {
            timeout_ms = max_wait_ms;
        }
    }
    try {
        _reactor->poll(timeout_ms);
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_OSError, e.what());
        return nullptr;
    }
    if (PyErr_Occurred()) {
        // A protocol handler's Python error that nothing above it could take.
        PyErr_WriteUnraisable(nullptr);
    }
    PyObject* events = PyList_New(0);
    if (events == nullptr) {
        return nullptr;
    }
    std::vector<loop_fd*> ready_fds;
    ready_fds.swap(_ready);
    for (loop_fd* w : ready_fds) {
        if (w->result >= 0) {
            _unarmed.push_back(w);
        }
        // else: a descriptor the kernel refuses to poll (closed under us) is reported
        // once to whoever waits on it, who will meet the error; it is not re-armed.
    }
    for (loop_fd* w : ready_fds) {
        unsigned ready = w->result >= 0 ? selector_events(w->result) & w->selected : w->selected;
        if (ready == 0) {
            continue;
        }
        PyObject* pair = Py_BuildValue("(OI)", w->key.get(), ready);
        if (pair == nullptr || PyList_Append(events, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(events);
            return nullptr;
        }
        Py_DECREF(pair);
    }
    return events;
}

}  // namespace dbridge::asgi
