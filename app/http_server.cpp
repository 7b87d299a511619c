#include "app/http_server.h"

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <optional>

namespace authwall::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool parse_host_port(std::string_view text, asio::ip::address& addr, unsigned short& port) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return false;  // bare IPv6 needs brackets
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port_text.empty() ||
      value > 65535) {
    return false;
  }
  port = static_cast<unsigned short>(value);
  if (host == "localhost") {
    addr = asio::ip::address_v4::loopback();
    return true;
  }
  if (host.empty() || host == "*") {
    addr = asio::ip::address_v6::any();
    return true;
  }
  boost::system::error_code error;
  addr = asio::ip::make_address(std::string(host), error);
  return !error;
}

struct HttpServer::State : std::enable_shared_from_this<HttpServer::State> {
  State(asio::io_context& io_in, HttpHandler h) : io(io_in), acceptor(io_in), handler(std::move(h)) {}
  asio::io_context& io;
  tcp::acceptor acceptor;
  HttpHandler handler;
  std::size_t connections = 0;
  bool stopped = false;

  void accept() {
    acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
      if (self->stopped) return;
      if (!ec) {
        if (self->connections >= kMaxConnections) {
          boost::system::error_code ignored;
          s.close(ignored);
        } else {
          self->start_session(std::move(s));
        }
      }
      self->accept();
    });
  }

  struct Session : std::enable_shared_from_this<Session> {
    Session(std::shared_ptr<State> st, tcp::socket s) : state(std::move(st)), stream(std::move(s)) {}
    ~Session() { --state->connections; }
    std::shared_ptr<State> state;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> response;

    void read() {
      parser.emplace();
      parser->body_limit(64 * 1024);
      parser->header_limit(16 * 1024);
      stream.expires_after(std::chrono::seconds(10));
      http::async_read(stream, buffer, *parser,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec) return self->close();
                         self->respond();
                       });
    }
    void respond() {
      const auto& req = parser->get();
      std::string_view target(req.target().data(), req.target().size());
      const auto q = target.find('?');
      if (q != std::string_view::npos) target = target.substr(0, q);
      std::string_view method(req.method_string().data(), req.method_string().size());
      HttpResponse r = state->handler(method, target);
      response = {};
      response.version(req.version());
      response.result(static_cast<http::status>(r.status));
      response.set(http::field::server, "authwall");
      response.set(http::field::content_type, r.content_type);
      response.keep_alive(req.keep_alive());
      if (req.method() == http::verb::head) {
        response.content_length(r.body.size());
      } else {
        response.body() = std::move(r.body);
        response.prepare_payload();
      }
      http::async_write(stream, response,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec || !self->response.keep_alive() || self->state->stopped) {
                            return self->close();
                          }
                          self->read();
                        });
    }
    void close() {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.socket().close(ignored);
    }
  };

  void start_session(tcp::socket s) {
    ++connections;
    std::make_shared<Session>(shared_from_this(), std::move(s))->read();
  }
};

HttpServer::HttpServer(asio::io_context& io, HttpHandler handler)
    : state_(std::make_shared<State>(io, std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::listen(const tcp::endpoint& endpoint, std::string& error) {
  boost::system::error_code ec;
  auto& a = state_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = ec.message();
    a.close(ec);
    return false;
  }
  state_->accept();
  return true;
}

void HttpServer::stop() {
  if (!state_ || state_->stopped) return;
  state_->stopped = true;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
}

tcp::endpoint HttpServer::local_endpoint() const {
  boost::system::error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

}  // namespace authwall::app
