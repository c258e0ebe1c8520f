// The io_uring ring as asyncio's selector: an asyncio.SelectorEventLoop built on
// RingSelector (python/dbridge_asgi/loops.py) waits in the ring for everything at once:
// the server's sockets (driven by the reactor, whose handlers run inside select()) and
// the descriptors the loop itself registers (its self-pipe, the app's database and
// HTTP client sockets), polled as one-shot IORING_OP_POLL_ADDs re-armed at each
// select(). One io_uring_enter per loop iteration submits what the last callbacks
// queued and waits, with the GIL released; a stock loop with the ring's eventfd as a
// reader pays an epoll_wait, an eventfd read and separate submits instead.
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "io/uring_reactor.h"
#include "py_ref.h"

namespace dbridge::asgi {

class ring_selector final {
public:
    // Creates the thread's io_uring reactor; throws std::system_error where io_uring
    // cannot be used (the caller then builds a stock loop).
    ring_selector();
    ~ring_selector();
    ring_selector(const ring_selector&) = delete;
    ring_selector& operator=(const ring_selector&) = delete;

    io::reactor& reactor() { return *_reactor; }

    // selectors.BaseSelector's register/modify (events: EVENT_READ 1 | EVENT_WRITE 2)
    // and unregister; `key` is the SelectorKey select() hands back.
    void watch(int fd, unsigned events, PyObject* key);
    void unwatch(int fd);
    // modify() with the same events and new data: only the key changes.
    void rekey(int fd, PyObject* key);
    // selectors.BaseSelector.select: a list of (key, events); timeout None blocks.
    PyObject* select(PyObject* timeout);
    // Python-visible: how many loop descriptors are watched (tests, stats).
    std::size_t watched() const { return _watches.size(); }

private:
    struct loop_fd;
    struct gil_guard final : io::wait_guard {
        PyThreadState* saved = nullptr;
        void release() override { saved = PyEval_SaveThread(); }
        void reacquire() override { PyEval_RestoreThread(saved); }
    };

    void on_poll(loop_fd& w, int result);
    void retire(std::unique_ptr<loop_fd> w);

    std::unique_ptr<io::uring_reactor> _reactor;
    gil_guard _gil;
    std::unordered_map<int, std::unique_ptr<loop_fd>> _watches;
    std::vector<std::unique_ptr<loop_fd>> _retired;  // unwatched, poll still in the kernel
    std::vector<loop_fd*> _unarmed;                 // registered, poll to be armed
    std::vector<loop_fd*> _ready;                   // polls that completed since select()
};

}  // namespace dbridge::asgi
