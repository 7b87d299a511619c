#include "app/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

namespace authwall::app {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

struct ControlSocketServer::State : std::enable_shared_from_this<ControlSocketServer::State> {
  State(asio::io_context& io_in, ControlHandler h, std::chrono::milliseconds request,
        std::chrono::milliseconds reply)
      : io(io_in), acceptor(io_in), handler(std::move(h)), request_deadline(request),
        reply_deadline(reply) {}
  asio::io_context& io;
  local::acceptor acceptor;
  ControlHandler handler;
  std::string path;
  bool stopped = false;
  std::chrono::milliseconds request_deadline;
  std::chrono::milliseconds reply_deadline;

  struct Session : std::enable_shared_from_this<Session> {
    Session(std::shared_ptr<State> st, local::socket s)
        : state(std::move(st)), socket(std::move(s)), timer(state->io),
          buffer(kMaxRequestBytes) {}
    std::shared_ptr<State> state;
    local::socket socket;
    asio::steady_timer timer;
    asio::streambuf buffer;
    std::string reply;

    // Closes the session if the current phase takes longer than `limit`. Re-arming cancels
    // the previous deadline.
    void arm(std::chrono::milliseconds limit) {
      timer.expires_after(limit);
      timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (ec) return;
        if (auto self = weak.lock()) {
          boost::system::error_code ignored;
          self->socket.close(ignored);
        }
      });
    }
    void start() {
      // A client that connects and never sends must not hold a session forever.
      arm(state->request_deadline);
      asio::async_read_until(socket, buffer, '\n',
                             [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                               self->on_line(ec, n);
                             });
    }
    void on_line(boost::system::error_code ec, std::size_t n) {
      if (ec) {
        if (ec == asio::error::not_found) {
          reply = "error request too long\n";
          return write();
        }
        return;
      }
      std::string line(asio::buffers_begin(buffer.data()),
                       asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(n));
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      reply = state->handler(line);
      write();
    }
    void write() {
      // The reply gets its own deadline: the request may have waited for the actions thread
      // (a busy state database) for most of the first one, and a long `bans` list for a slow
      // reader takes time too.
      arm(state->reply_deadline);
      asio::async_write(socket, asio::buffer(reply),
                        [self = shared_from_this()](boost::system::error_code, std::size_t) {
                          boost::system::error_code ignored;
                          self->timer.cancel();
                          self->socket.shutdown(local::socket::shutdown_both, ignored);
                          self->socket.close(ignored);
                        });
    }
  };

  void accept() {
    acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec, local::socket s) {
      if (self->stopped) return;
      if (!ec) std::make_shared<Session>(self, std::move(s))->start();
      self->accept();
    });
  }
};

ControlSocketServer::ControlSocketServer(asio::io_context& io, ControlHandler handler,
                                         std::chrono::milliseconds request_deadline,
                                         std::chrono::milliseconds reply_deadline)
    : state_(std::make_shared<State>(io, std::move(handler), request_deadline, reply_deadline)) {}

ControlSocketServer::~ControlSocketServer() { stop(); }

bool ControlSocketServer::listen(const std::string& path, unsigned mode, std::string& error) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    error = "control socket path is too long: " + path;
    return false;
  }
  std::error_code fs_error;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, fs_error);
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = "control socket path exists and is not a socket: " + path;
      return false;
    }
    local::socket probe(state_->io);
    boost::system::error_code ec;
    probe.connect(local::endpoint(path), ec);
    if (!ec) {
      error = "another authwall is already running (control socket " + path + " answers)";
      return false;
    }
    ::unlink(path.c_str());
  }
  boost::system::error_code ec;
  auto& a = state_->acceptor;
  a.open(local(), ec);
  if (!ec) {
    // The socket file gets its mode at bind time from the umask: narrow it around bind so the
    // file is never, even briefly, more open than `mode`.
    const mode_t old = ::umask(static_cast<mode_t>(~mode & 0777));
    a.bind(local::endpoint(path), ec);
    ::umask(old);
  }
  if (!ec && ::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    ec.assign(errno, boost::system::system_category());
  }
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "cannot create control socket " + path + ": " + ec.message();
    a.close(ec);
    return false;
  }
  state_->path = path;
  state_->accept();
  return true;
}

void ControlSocketServer::stop() {
  if (!state_ || state_->stopped) return;
  state_->stopped = true;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  if (!state_->path.empty()) ::unlink(state_->path.c_str());
}

bool control_request(const std::string& socket_path, std::string_view request, std::string& reply,
                     std::string& error) {
  const std::string not_running = "authwall is not running (no control socket at " + socket_path + ")";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    error = "control socket path is too long: " + socket_path;
    return false;
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("cannot create a socket: ") + std::strerror(errno);
    return false;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) {
      error = not_running;
    } else if (e == EACCES || e == EPERM) {
      error = "permission denied on the control socket " + socket_path +
              " (run as the user that runs authwall)";
    } else {
      error = "cannot connect to the control socket " + socket_path + ": " + std::strerror(e);
    }
    return false;
  }
  // A daemon that accepted but hangs must not hang the CLI forever.
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string line(request);
  line += '\n';
  std::size_t off = 0;
  while (off < line.size()) {
    const ssize_t w = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      error = std::string("cannot send to the control socket: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    off += static_cast<std::size_t>(w);
  }
  reply.clear();
  char buf[8192];
  for (;;) {
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      error = std::string("no reply from the daemon on the control socket: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    reply.append(buf, static_cast<std::size_t>(r));
  }
  ::close(fd);
  if (reply.empty()) {
    error = "the daemon closed the control socket without replying";
    return false;
  }
  return true;
}

}  // namespace authwall::app
