#include "actions/nft_backend.h"

#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace authwall::actions {
namespace {

// nftables' datatype ids (nftables include/datatype.h), which `nft list` uses to print keys.
constexpr std::uint32_t kTypeIpv4Addr = 7;
constexpr std::uint32_t kTypeIpv6Addr = 8;
constexpr std::uint32_t kTypeInetService = 13;
// nftables' BYTEORDER_BIG_ENDIAN, stored in set userdata the way `nft` stores it.
constexpr std::uint32_t kByteorderBigEndian = 2;
constexpr std::uint32_t kBanSetFlags = NFT_SET_INTERVAL | NFT_SET_TIMEOUT;
constexpr std::int32_t kChainPriority = -10;  // NF_IP_PRI_FILTER - 10: before usual filter chains
constexpr const char* kProbeSet = "refresh_probe";

// Room for one set-element message: header, names, two elements with 16-byte keys.
constexpr std::size_t kElementMessageRoom = 512;
// Kernel replies in flight during one commit are errors only (plus one ack), so a few MiB is
// room for thousands of failing elements; beyond that the batch is bisected.
constexpr int kReceiveBuffer = 4 << 20;

struct HookSpec {
  const char* name;
  std::uint32_t hooknum;
};
constexpr HookSpec kHooks[] = {
    {"input", NF_INET_LOCAL_IN},
    {"forward", NF_INET_FORWARD},
    {"prerouting", NF_INET_PRE_ROUTING},
};

const HookSpec* find_hook(const std::string& name) {
  for (const auto& h : kHooks) {
    if (name == h.name) return &h;
  }
  return nullptr;
}

std::string errno_text(int err) { return std::strerror(err); }

// The address after `a` in its family; false when `a` is the family's last address.
bool next_address(const IpAddress& a, IpAddress& out) noexcept {
  out = a;
  const int n = a.is_v4 ? 4 : 16;
  for (int i = n - 1; i >= 0; --i) {
    auto& b = out.bytes[static_cast<std::size_t>(i)];
    if (b != 0xff) {
      ++b;
      return true;
    }
    b = 0;
  }
  return false;
}

bool previous_address(const IpAddress& a, IpAddress& out) noexcept {
  out = a;
  const int n = a.is_v4 ? 4 : 16;
  for (int i = n - 1; i >= 0; --i) {
    auto& b = out.bytes[static_cast<std::size_t>(i)];
    if (b != 0) {
      --b;
      return true;
    }
    b = 0xff;
  }
  return false;
}

template <typename T, void (*Free)(const T*)>
struct NftnlDeleter {
  void operator()(T* p) const noexcept { Free(p); }
};
using TablePtr = std::unique_ptr<nftnl_table, NftnlDeleter<nftnl_table, nftnl_table_free>>;
using ChainPtr = std::unique_ptr<nftnl_chain, NftnlDeleter<nftnl_chain, nftnl_chain_free>>;
using SetPtr = std::unique_ptr<nftnl_set, NftnlDeleter<nftnl_set, nftnl_set_free>>;
using RulePtr = std::unique_ptr<nftnl_rule, NftnlDeleter<nftnl_rule, nftnl_rule_free>>;

struct ElementOp {
  enum class Kind : std::uint8_t { kAdd, kDelete };
  Kind kind = Kind::kAdd;
  IpAddress first;
  IpAddress last;
  std::uint64_t timeout_ms = 0;
  std::size_t origin = 0;  // index in the caller's span
};

struct ChainInfo {
  std::string name;
  bool base = false;
  std::uint32_t hooknum = 0;
  std::int32_t prio = 0;
  std::string type;
  std::uint32_t policy = 0;
};

struct SetInfo {
  std::string name;
  std::uint32_t flags = 0;
  std::uint32_t key_type = 0;
  std::uint32_t key_len = 0;
};

struct RawElement {
  IpAddress key;
  bool end = false;
  std::uint64_t timeout_ms = 0;
  std::uint64_t expires_ms = 0;
};

}  // namespace

struct NftBanBackend::Impl {
  NftLayout layout;
  mnl_socket* nl = nullptr;
  std::uint32_t portid = 0;
  std::uint32_t seq = 1;
  std::uint32_t next_set_id = 1;
  int sndbuf = 0;

  std::vector<char> batch;
  std::size_t batch_len = 0;
  std::size_t last_msg_offset = 0;
  std::size_t messages = 0;  // in the batch being built, between BEGIN and END
  std::uint32_t batch_begin_seq = 0;
  std::uint32_t batch_last_seq = 0;
  std::vector<char> rx = std::vector<char>(1 << 17);

  // The element ops of the current apply()/remove(), and for the batch being committed the
  // seq of each op's first message (in `positions` order), to map kernel errors back to ops.
  std::vector<ElementOp> ops;
  std::vector<std::uint32_t> op_seq;
  std::vector<std::size_t> last;  // last_change_per_target() of the current apply()

  ~Impl() {
    if (nl != nullptr) mnl_socket_close(nl);
  }

  // ---- socket ------------------------------------------------------------------------------

  bool open(std::string& error) {
    if (nl != nullptr) return true;
    nl = mnl_socket_open(NETLINK_NETFILTER);
    if (nl == nullptr) {
      error = "cannot open a netfilter netlink socket: " + errno_text(errno);
      return false;
    }
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
      error = "cannot bind the netfilter netlink socket: " + errno_text(errno);
      mnl_socket_close(nl);
      nl = nullptr;
      return false;
    }
    portid = mnl_socket_get_portid(nl);
    const int fd = mnl_socket_get_fd(nl);
    // Errors then echo only the header of the refused message, not its payload.
    const int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kReceiveBuffer, sizeof kReceiveBuffer) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer);
    }
    // Dumps block in recv; a kernel that stops answering must not hang the actions thread.
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return true;
  }

  void discard_pending() {
    const int fd = mnl_socket_get_fd(nl);
    for (;;) {
      const ssize_t n = recv(fd, rx.data(), rx.size(), MSG_DONTWAIT);
      if (n > 0) continue;
      if (n < 0 && (errno == EINTR || errno == ENOBUFS)) continue;
      break;
    }
  }

  // ---- batch building ------------------------------------------------------------------------

  char* room(std::size_t n) {
    if (batch.size() - batch_len < n) batch.resize(std::max(batch.size() * 2, batch_len + n));
    return batch.data() + batch_len;
  }
  void push(nlmsghdr* nlh) {
    last_msg_offset = batch_len;
    batch_len += nlh->nlmsg_len;
    ++messages;
  }
  void begin_batch() {
    // Replies are matched to the batch by seq range: restart well before uint32 wraps, so a
    // batch never spans the wrap (stale replies are drained before every send).
    if (seq > 0xC0000000u) seq = 1;
    batch_len = 0;
    messages = 0;
    batch_begin_seq = seq;
    const nlmsghdr* nlh = nftnl_batch_begin(room(64), seq++);
    batch_len += nlh->nlmsg_len;
  }
  nlmsghdr* header(std::size_t n, std::uint16_t type, std::uint16_t flags) {
    return nftnl_nlmsg_build_hdr(room(n), type, NFPROTO_INET, flags, seq++);
  }

  void put_element(nlmsghdr* nlh, const IpAddress& key, std::uint32_t flags,
                   std::uint64_t timeout_ms) {
    nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
    if (flags != 0) mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(flags));
    if (timeout_ms != 0) mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64(timeout_ms));
    nlattr* k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
    mnl_attr_put(nlh, NFTA_DATA_VALUE, key.is_v4 ? 4 : 16, key.bytes.data());
    mnl_attr_nest_end(nlh, k);
    mnl_attr_nest_end(nlh, elem);
  }

  // One message carrying the interval [first, last]: its start element and, unless the range
  // runs to the family's last address, the end element (key last+1, NFT_SET_ELEM_INTERVAL_END),
  // the way nftables' src/netlink.c encodes intervals. The end element never carries a
  // timeout: the kernel expires the pair through the start element.
  void put_range_message(std::uint16_t type, std::uint16_t flags, const char* set_name,
                         const IpAddress& first, const IpAddress& last, std::uint64_t timeout_ms) {
    nlmsghdr* nlh = header(kElementMessageRoom, type, flags);
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, layout.table.c_str());
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set_name);
    nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
    put_element(nlh, first, 0, timeout_ms);
    IpAddress end;
    if (next_address(last, end)) put_element(nlh, end, NFT_SET_ELEM_INTERVAL_END, 0);
    mnl_attr_nest_end(nlh, list);
    push(nlh);
  }

  void put_op(const ElementOp& op, RefreshMode refresh) {
    const char* set = op.first.is_v4 ? NftBanBackend::kSetIpv4 : NftBanBackend::kSetIpv6;
    // No NLM_F_EXCL: adding an element that exists is not an error (and refreshes it on
    // kernels that update timeouts in place).
    const std::uint16_t create = NLM_F_CREATE;
    if (op.kind == ElementOp::Kind::kAdd) {
      put_range_message(NFT_MSG_NEWSETELEM, create, set, op.first, op.last, op.timeout_ms);
      if (refresh == RefreshMode::kDeleteAndAdd) {
        put_range_message(NFT_MSG_DELSETELEM, 0, set, op.first, op.last, 0);
        put_range_message(NFT_MSG_NEWSETELEM, create, set, op.first, op.last, op.timeout_ms);
      }
    } else {
      // Add first so the delete always finds the element: an unban of a ban that already
      // expired must not abort the whole transaction with ENOENT.
      put_range_message(NFT_MSG_NEWSETELEM, create, set, op.first, op.last, 1000);
      put_range_message(NFT_MSG_DELSETELEM, 0, set, op.first, op.last, 0);
    }
  }

  template <typename Build>
  void put_object(std::size_t n, std::uint16_t type, std::uint16_t flags, Build&& build) {
    nlmsghdr* nlh = header(n, type, flags);
    build(nlh);
    push(nlh);
  }

  // ---- commit --------------------------------------------------------------------------------

  struct Outcome {
    bool committed = false;
    bool complete = false;  // every reply arrived: per-message errors are exact
    int fatal = 0;          // an errno no retry can fix (EPERM, socket failure)
    int batch_error = 0;    // the kernel refused the batch as a whole
    std::vector<std::pair<std::uint32_t, int>> errors;  // (seq, errno) of refused messages
  };

  Outcome send_batch() {
    Outcome out;
    if (messages == 0) {  // nothing to commit: an empty transaction is trivially done
      out.committed = out.complete = true;
      return out;
    }
    // The last real message asks for an acknowledgement: seeing it proves every earlier reply
    // (errors are delivered in message order) has been queued to us.
    auto* last = reinterpret_cast<nlmsghdr*>(batch.data() + last_msg_offset);
    last->nlmsg_flags |= NLM_F_ACK;
    batch_last_seq = last->nlmsg_seq;
    const nlmsghdr* end = nftnl_batch_end(room(64), seq++);
    batch_len += end->nlmsg_len;

    const int fd = mnl_socket_get_fd(nl);
    const int needed = static_cast<int>(std::min<std::size_t>(batch_len + 65536, 1u << 30));
    if (needed > sndbuf) {
      if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &needed, sizeof needed) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &needed, sizeof needed);
      }
      sndbuf = needed;
    }
    discard_pending();
    if (mnl_socket_sendto(nl, batch.data(), batch_len) < 0) {
      out.fatal = errno;
      return out;
    }
    // nfnetlink processes a batch synchronously inside sendmsg(), so the replies are already
    // queued; the poll only guards against a kernel that behaves otherwise.
    bool marker = false;
    bool lost = false;
    for (int rounds = 0; rounds < 50 && !marker; ++rounds) {
      for (;;) {
        const ssize_t n = recv(fd, rx.data(), rx.size(), MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == ENOBUFS) {  // replies were dropped: per-message errors are incomplete
            lost = true;
            continue;
          }
          break;
        }
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<nlmsghdr*>(rx.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
          if (nlh->nlmsg_type != NLMSG_ERROR) continue;
          const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
          const std::uint32_t s = nlh->nlmsg_seq;
          if (s < batch_begin_seq || s > batch_last_seq) continue;  // an older batch's reply
          if (s == batch_last_seq) marker = true;
          if (err->error != 0) {
            out.errors.emplace_back(s, -err->error);
            if (s == batch_begin_seq) out.batch_error = -err->error;
          }
        }
      }
      if (marker || out.batch_error != 0) break;
      pollfd p{fd, POLLIN, 0};
      poll(&p, 1, 20);
    }
    for (const auto& [s, e] : out.errors) {
      if (e == EPERM) out.fatal = EPERM;
    }
    out.complete = marker && !lost;
    out.committed = out.complete && out.errors.empty();
    return out;
  }

  // ---- dumps ---------------------------------------------------------------------------------

  // Sends a dump request and feeds every reply message to `cb`. Returns 0 or an errno.
  int dump(nlmsghdr* request, mnl_cb_t cb, void* data) {
    discard_pending();
    const std::uint32_t s = request->nlmsg_seq;
    for (int attempt = 0; attempt < 3; ++attempt) {
      request->nlmsg_seq = s;
      if (mnl_socket_sendto(nl, request, request->nlmsg_len) < 0) return errno;
      int ret = MNL_CB_OK;
      while (ret > MNL_CB_STOP) {
        const ssize_t n = mnl_socket_recvfrom(nl, rx.data(), rx.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          return errno;
        }
        ret = mnl_cb_run(rx.data(), static_cast<std::size_t>(n), s, portid, cb, data);
      }
      if (ret == MNL_CB_STOP) return 0;
      // The set changed while it was dumped (NLM_F_DUMP_INTR): read it again.
      if (errno != EINTR) return errno;
      discard_pending();
    }
    return EINTR;
  }

  int dump_tables(bool& exists) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_DUMP, seq++);
    struct Ctx {
      const std::string* name;
      bool* exists;
    } ctx{&layout.table, &exists};
    exists = false;
    return dump(nlh, [](const nlmsghdr* m, void* d) -> int {
      auto* c = static_cast<Ctx*>(d);
      TablePtr t(nftnl_table_alloc());
      if (t && nftnl_table_nlmsg_parse(m, t.get()) == 0) {
        const char* name = nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME);
        if (name != nullptr && *c->name == name) *c->exists = true;
      }
      return MNL_CB_OK;
    }, &ctx);
  }

  int dump_chains(std::vector<ChainInfo>& out) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP, seq++);
    struct Ctx {
      const std::string* table;
      std::vector<ChainInfo>* out;
    } ctx{&layout.table, &out};
    out.clear();
    return dump(nlh, [](const nlmsghdr* m, void* d) -> int {
      auto* c = static_cast<Ctx*>(d);
      ChainPtr ch(nftnl_chain_alloc());
      if (!ch || nftnl_chain_nlmsg_parse(m, ch.get()) != 0) return MNL_CB_OK;
      const char* table = nftnl_chain_get_str(ch.get(), NFTNL_CHAIN_TABLE);
      if (table == nullptr || *c->table != table) return MNL_CB_OK;
      ChainInfo info;
      info.name = nftnl_chain_get_str(ch.get(), NFTNL_CHAIN_NAME);
      info.base = nftnl_chain_is_set(ch.get(), NFTNL_CHAIN_HOOKNUM);
      if (info.base) {
        info.hooknum = nftnl_chain_get_u32(ch.get(), NFTNL_CHAIN_HOOKNUM);
        info.prio = nftnl_chain_get_s32(ch.get(), NFTNL_CHAIN_PRIO);
        if (const char* type = nftnl_chain_get_str(ch.get(), NFTNL_CHAIN_TYPE)) info.type = type;
        info.policy = nftnl_chain_get_u32(ch.get(), NFTNL_CHAIN_POLICY);
      }
      c->out->push_back(std::move(info));
      return MNL_CB_OK;
    }, &ctx);
  }

  int dump_sets(std::vector<SetInfo>& out) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP, seq++);
    SetPtr filter(nftnl_set_alloc());
    nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, layout.table.c_str());
    nftnl_set_nlmsg_build_payload(nlh, filter.get());
    struct Ctx {
      const std::string* table;
      std::vector<SetInfo>* out;
    } ctx{&layout.table, &out};
    out.clear();
    return dump(nlh, [](const nlmsghdr* m, void* d) -> int {
      auto* c = static_cast<Ctx*>(d);
      SetPtr s(nftnl_set_alloc());
      if (!s || nftnl_set_nlmsg_parse(m, s.get()) != 0) return MNL_CB_OK;
      const char* table = nftnl_set_get_str(s.get(), NFTNL_SET_TABLE);
      if (table == nullptr || *c->table != table) return MNL_CB_OK;
      SetInfo info;
      info.name = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
      info.flags = nftnl_set_get_u32(s.get(), NFTNL_SET_FLAGS);
      info.key_type = nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_TYPE);
      info.key_len = nftnl_set_get_u32(s.get(), NFTNL_SET_KEY_LEN);
      c->out->push_back(std::move(info));
      return MNL_CB_OK;
    }, &ctx);
  }

  int dump_elements(const char* set_name, bool is_v4, std::vector<RawElement>& out) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, seq++);
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, layout.table.c_str());
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set_name);
    struct Ctx {
      bool is_v4;
      std::vector<RawElement>* out;
    } ctx{is_v4, &out};
    return dump(nlh, [](const nlmsghdr* m, void* d) -> int {
      auto* c = static_cast<Ctx*>(d);
      SetPtr s(nftnl_set_alloc());
      if (!s || nftnl_set_elems_nlmsg_parse(m, s.get()) != 0) return MNL_CB_OK;
      nftnl_set_elem_foreach(s.get(), [](nftnl_set_elem* e, void* d2) -> int {
        auto* c2 = static_cast<Ctx*>(d2);
        std::uint32_t len = 0;
        const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
        const std::uint32_t want = c2->is_v4 ? 4 : 16;
        if (key == nullptr || len != want) return 0;
        RawElement r;
        r.key.is_v4 = c2->is_v4;
        std::memcpy(r.key.bytes.data(), key, len);
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS)) {
          r.end = (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END) != 0;
        }
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT)) {
          r.timeout_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
        }
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION)) {
          r.expires_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
        }
        c2->out->push_back(r);
        return 0;
      }, c);
      return MNL_CB_OK;
    }, &ctx);
  }

  // ---- layout objects -------------------------------------------------------------------------

  SetPtr make_set(const char* name, std::uint32_t flags, std::uint32_t key_type,
                  std::uint32_t key_len, std::uint32_t id) {
    SetPtr s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, layout.table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name);
    nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, flags);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, key_type);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, key_len);
    nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
    // `nft` records the key's byte order in the set's userdata; listing relies on it.
    nftnl_udata_buf* ud = nftnl_udata_buf_alloc(64);
    nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, kByteorderBigEndian);
    nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
                       nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
    return s;
  }

  void put_new_set(const SetPtr& s) {
    put_object(1024, NFT_MSG_NEWSET, NLM_F_CREATE,
               [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, s.get()); });
  }

  void put_delete_set(const std::string& name) {
    SetPtr s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, layout.table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
    put_object(1024, NFT_MSG_DELSET, 0,
               [&](nlmsghdr* nlh) { nftnl_set_nlmsg_build_payload(nlh, s.get()); });
  }

  void put_flush_set(const char* name) {
    SetPtr s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, layout.table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name);
    // A DELSETELEM without an element list empties the set.
    put_object(1024, NFT_MSG_DELSETELEM, 0,
               [&](nlmsghdr* nlh) { nftnl_set_elems_nlmsg_build_payload(nlh, s.get()); });
  }

  static nftnl_expr* expr_meta(std::uint32_t key) {
    nftnl_expr* e = nftnl_expr_alloc("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
    return e;
  }
  static nftnl_expr* expr_cmp_u8(std::uint8_t value) {
    nftnl_expr* e = nftnl_expr_alloc("cmp");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &value, sizeof value);
    return e;
  }
  static nftnl_expr* expr_payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len) {
    nftnl_expr* e = nftnl_expr_alloc("payload");
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
    return e;
  }
  static nftnl_expr* expr_lookup(const char* set, std::uint32_t set_id) {
    nftnl_expr* e = nftnl_expr_alloc("lookup");
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
    return e;
  }

  // `ip saddr @banned_ipv4 tcp dport { ports } counter drop` (or its ip6 twin), expressed as
  // the same expressions `nft` generates, so `nft list` prints it back in that form.
  void put_rule(const char* chain, bool is_v4, std::uint32_t ban_set_id,
                const std::vector<std::uint16_t>& ports) {
    std::uint32_t ports_id = 0;
    if (!layout.all_ports) {
      ports_id = next_set_id++;
      SetPtr s = make_set("__set%d", NFT_SET_ANONYMOUS | NFT_SET_CONSTANT, kTypeInetService, 2,
                          ports_id);
      nftnl_set_set_u32(s.get(), NFTNL_SET_DESC_SIZE, static_cast<std::uint32_t>(ports.size()));
      put_new_set(s);
      for (std::uint16_t port : ports) {
        nftnl_set_elem* e = nftnl_set_elem_alloc();
        const std::uint16_t be = htons(port);
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &be, sizeof be);
        nftnl_set_elem_add(s.get(), e);
      }
      put_object(256 + 32 * ports.size(), NFT_MSG_NEWSETELEM, NLM_F_CREATE,
                 [&](nlmsghdr* nlh) { nftnl_set_elems_nlmsg_build_payload(nlh, s.get()); });
    }
    RulePtr r(nftnl_rule_alloc());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, layout.table.c_str());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain);
    nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_rule_add_expr(r.get(), expr_meta(NFT_META_NFPROTO));
    nftnl_rule_add_expr(r.get(), expr_cmp_u8(is_v4 ? NFPROTO_IPV4 : NFPROTO_IPV6));
    nftnl_rule_add_expr(r.get(),
                        is_v4 ? expr_payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4)
                              : expr_payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 16));
    nftnl_rule_add_expr(r.get(), expr_lookup(is_v4 ? NftBanBackend::kSetIpv4
                                                   : NftBanBackend::kSetIpv6,
                                             ban_set_id));
    if (!layout.all_ports) {
      nftnl_rule_add_expr(r.get(), expr_meta(NFT_META_L4PROTO));
      nftnl_rule_add_expr(r.get(), expr_cmp_u8(IPPROTO_TCP));
      nftnl_rule_add_expr(r.get(), expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2));
      nftnl_rule_add_expr(r.get(), expr_lookup("__set%d", ports_id));
    }
    nftnl_rule_add_expr(r.get(), nftnl_expr_alloc("counter"));
    nftnl_expr* verdict = nftnl_expr_alloc("immediate");
    nftnl_expr_set_u32(verdict, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(verdict, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
    nftnl_rule_add_expr(r.get(), verdict);
    put_object(2048, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
               [&](nlmsghdr* nlh) { nftnl_rule_nlmsg_build_payload(nlh, r.get()); });
  }
};

// ---------------------------------------------------------------------------------------------

NftBanBackend::NftBanBackend(NftLayout layout, RefreshMode refresh)
    : impl_(std::make_unique<Impl>()), refresh_(refresh) {
  impl_->layout = std::move(layout);
}

NftBanBackend::~NftBanBackend() = default;

PrepareResult NftBanBackend::prepare() {
  PrepareResult result;
  Impl& m = *impl_;
  const NftLayout& layout = m.layout;
  const std::string where = "nftables table inet " + layout.table;

  // The configuration: checked here because the constructor cannot report errors.
  if (layout.table.empty() || layout.table.size() >= NFT_TABLE_MAXNAMELEN) {
    result.error = "nftables: the table name must be 1 to 255 characters";
    return result;
  }
  std::vector<const HookSpec*> hooks;
  for (const auto& name : layout.hooks) {
    const HookSpec* h = find_hook(name);
    if (h == nullptr) {
      result.error = "nftables: unknown hook \"" + name + "\" (use input, forward or prerouting)";
      return result;
    }
    if (std::find(hooks.begin(), hooks.end(), h) == hooks.end()) hooks.push_back(h);
  }
  if (hooks.empty()) {
    result.error = "nftables: no hooks configured, so no packet would ever be dropped";
    return result;
  }
  std::vector<std::uint16_t> ports = layout.ports;
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  if (!layout.all_ports && ports.empty()) {
    result.error = "nftables: no ports configured (list ports, or use ports: all)";
    return result;
  }

  if (!m.open(result.error)) return result;

  // What exists now.
  bool table_exists = false;
  std::vector<ChainInfo> chains;
  std::vector<SetInfo> sets;
  int err = m.dump_tables(table_exists);
  if (err == 0 && table_exists) err = m.dump_chains(chains);
  if (err == 0 && table_exists) err = m.dump_sets(sets);
  if (err != 0) {
    result.permission_denied = err == EPERM;
    result.error = err == EPERM
                       ? "nftables: permission denied reading the ruleset; authwall needs "
                         "CAP_NET_ADMIN (run it as root or grant the capability), or use --dry-run"
                       : "nftables: cannot read " + where + ": " + errno_text(err);
    return result;
  }
  result.created_table = !table_exists;

  // One transaction that leaves the table exactly as configured. Rules are always replaced
  // (atomically, so there is no moment without them); sets are kept when their type and flags
  // are right, so bans survive a daemon restart; anything else in the table is ours to remove.
  m.begin_batch();
  {
    TablePtr t(nftnl_table_alloc());
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, layout.table.c_str());
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, NFPROTO_INET);
    nftnl_table_set_u32(t.get(), NFTNL_TABLE_FLAGS, 0);  // wakes a table someone made dormant
    m.put_object(512, NFT_MSG_NEWTABLE, NLM_F_CREATE,
                 [&](nlmsghdr* nlh) { nftnl_table_nlmsg_build_payload(nlh, t.get()); });
  }
  for (const auto& c : chains) {
    RulePtr r(nftnl_rule_alloc());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, layout.table.c_str());
    nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, c.name.c_str());
    nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    m.put_object(512, NFT_MSG_DELRULE, 0,
                 [&](nlmsghdr* nlh) { nftnl_rule_nlmsg_build_payload(nlh, r.get()); });
  }
  std::vector<const HookSpec*> chains_to_create;
  for (const HookSpec* h : hooks) {
    const auto it = std::find_if(chains.begin(), chains.end(),
                                 [&](const ChainInfo& c) { return c.name == h->name; });
    const bool right = it != chains.end() && it->base && it->hooknum == h->hooknum &&
                       it->prio == kChainPriority && it->type == "filter" &&
                       it->policy == NF_ACCEPT;
    if (!right) chains_to_create.push_back(h);
  }
  for (const auto& c : chains) {
    const bool wanted_and_right =
        std::find_if(hooks.begin(), hooks.end(), [&](const HookSpec* h) {
          return c.name == h->name && std::find(chains_to_create.begin(), chains_to_create.end(),
                                                h) == chains_to_create.end();
        }) != hooks.end();
    if (wanted_and_right) continue;
    ChainPtr ch(nftnl_chain_alloc());
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TABLE, layout.table.c_str());
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_NAME, c.name.c_str());
    m.put_object(512, NFT_MSG_DELCHAIN, 0,
                 [&](nlmsghdr* nlh) { nftnl_chain_nlmsg_build_payload(nlh, ch.get()); });
  }
  struct WantedSet {
    const char* name;
    std::uint32_t key_type;
    std::uint32_t key_len;
    std::uint32_t id = 0;
  };
  WantedSet wanted[] = {{kSetIpv4, kTypeIpv4Addr, 4}, {kSetIpv6, kTypeIpv6Addr, 16}};
  for (const auto& s : sets) {
    if ((s.flags & NFT_SET_ANONYMOUS) != 0) continue;  // released with the rules using them
    const bool right = std::any_of(std::begin(wanted), std::end(wanted), [&](const WantedSet& w) {
      return s.name == w.name && s.key_type == w.key_type && s.key_len == w.key_len &&
             s.flags == kBanSetFlags;
    });
    if (!right) m.put_delete_set(s.name);
  }
  for (auto& w : wanted) {
    const bool right = std::any_of(sets.begin(), sets.end(), [&](const SetInfo& s) {
      return s.name == w.name && s.key_type == w.key_type && s.key_len == w.key_len &&
             s.flags == kBanSetFlags;
    });
    w.id = m.next_set_id++;
    if (right) continue;
    m.put_new_set(m.make_set(w.name, kBanSetFlags, w.key_type, w.key_len, w.id));
    ++result.repaired;
  }
  for (const HookSpec* h : chains_to_create) {
    ChainPtr ch(nftnl_chain_alloc());
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TABLE, layout.table.c_str());
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_NAME, h->name);
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_HOOKNUM, h->hooknum);
    nftnl_chain_set_s32(ch.get(), NFTNL_CHAIN_PRIO, kChainPriority);
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TYPE, "filter");
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
    m.put_object(512, NFT_MSG_NEWCHAIN, NLM_F_CREATE,
                 [&](nlmsghdr* nlh) { nftnl_chain_nlmsg_build_payload(nlh, ch.get()); });
    ++result.repaired;
  }
  for (const HookSpec* h : hooks) {
    m.put_rule(h->name, true, wanted[0].id, ports);
    m.put_rule(h->name, false, wanted[1].id, ports);
  }
  const Impl::Outcome out = m.send_batch();
  if (!out.committed) {
    const int e = out.fatal != 0 ? out.fatal
                  : !out.errors.empty() ? out.errors.front().second
                                        : EIO;
    result.permission_denied = e == EPERM;
    result.error = e == EPERM
                       ? "nftables: permission denied creating " + where +
                             "; authwall needs CAP_NET_ADMIN (run it as root or grant the "
                             "capability), or use --dry-run"
                       : "nftables: the kernel refused to set up " + where + ": " + errno_text(e);
    ++stats_.batches_failed;
    return result;
  }
  ++stats_.batches_committed;

  if (refresh_ == RefreshMode::kProbe) {
    // Does this kernel refresh an element's timeout when it is added again? Ask it, on a
    // scratch set in our own table, rather than guess from a version number.
    refresh_ = RefreshMode::kDeleteAndAdd;
    IpAddress probe;
    IpAddress::parse("192.0.2.1", probe);  // TEST-NET-1; the scratch set is in no rule anyway
    bool ok = true;
    for (std::uint64_t timeout : {600000u, 1200000u}) {
      m.begin_batch();
      if (timeout == 600000u) {
        m.put_new_set(m.make_set(kProbeSet, kBanSetFlags, kTypeIpv4Addr, 4, m.next_set_id++));
      }
      m.put_range_message(NFT_MSG_NEWSETELEM, NLM_F_CREATE, kProbeSet, probe, probe, timeout);
      ok = ok && m.send_batch().committed;
    }
    std::vector<RawElement> elems;
    if (ok && m.dump_elements(kProbeSet, true, elems) == 0) {
      for (const auto& e : elems) {
        if (!e.end && e.timeout_ms == 1200000u) refresh_ = RefreshMode::kUpdateInPlace;
      }
    }
    m.begin_batch();
    m.put_delete_set(kProbeSet);
    m.send_batch();
  }
  result.ok = true;
  return result;
}

BatchResult NftBanBackend::apply(std::span<const BanChange> changes, UnixMicros) {
  BatchResult result;
  Impl& m = *impl_;
  m.ops.clear();
  last_change_per_target(changes, m.last);
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const BanChange& c = changes[i];
    if (m.last[i] != i) continue;
    if (c.kind == BanChange::Kind::kAdd && c.timeout_seconds == 0) {
      // A timeout-less element would never expire: refuse rather than ban forever.
      result.failures.push_back(ElementFailure{i, EINVAL});
      ++stats_.element_errors;
      continue;
    }
    ElementOp op;
    op.kind = c.kind == BanChange::Kind::kAdd ? ElementOp::Kind::kAdd : ElementOp::Kind::kDelete;
    prefix_range(c.target, op.first, op.last);
    op.timeout_ms = std::uint64_t{c.timeout_seconds} * 1000;
    op.origin = i;
    m.ops.push_back(op);
  }
  commit_ops(result);
  std::sort(result.failures.begin(), result.failures.end(),
            [](const ElementFailure& a, const ElementFailure& b) { return a.index < b.index; });
  settle_superseded(m.last, result, stats_);
  return result;
}

BatchResult NftBanBackend::remove(std::span<const SetElement> elements, UnixMicros) {
  BatchResult result;
  Impl& m = *impl_;
  m.ops.clear();
  for (std::size_t i = 0; i < elements.size(); ++i) {
    ElementOp op;
    op.kind = ElementOp::Kind::kDelete;
    op.first = elements[i].first;
    op.last = elements[i].last;
    op.origin = i;
    m.ops.push_back(op);
  }
  commit_ops(result);
  std::sort(result.failures.begin(), result.failures.end(),
            [](const ElementFailure& a, const ElementFailure& b) { return a.index < b.index; });
  return result;
}

void NftBanBackend::commit_ops(BatchResult& result) {
  Impl& m = *impl_;
  if (m.ops.empty()) return;
  if (m.nl == nullptr) {
    result.error = "nftables: the backend was not prepared";
    for (const auto& op : m.ops) result.failures.push_back(ElementFailure{op.origin, ENOTCONN});
    stats_.element_errors += m.ops.size();
    return;
  }
  std::vector<std::size_t> all(m.ops.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  commit_positions(all, result);
  // A restore can grow the batch buffer to tens of MiB; steady-state batches are small, so give
  // that memory back instead of keeping it for the daemon's lifetime.
  if (m.batch.size() > (8u << 20)) std::vector<char>().swap(m.batch);
}

// Commits ops[positions] as one batch; when the kernel refuses it, splits the work so that
// every op ends applied or failed on its own.
void NftBanBackend::commit_positions(const std::vector<std::size_t>& positions,
                                     BatchResult& result) {
  Impl& m = *impl_;
  m.begin_batch();
  m.op_seq.resize(positions.size());
  for (std::size_t i = 0; i < positions.size(); ++i) {
    m.op_seq[i] = m.seq;
    m.put_op(m.ops[positions[i]], refresh_);
  }
  const Impl::Outcome out = m.send_batch();
  ++result.batches_sent;
  if (out.committed) {
    ++stats_.batches_committed;
    stats_.elements_applied += positions.size();
    result.applied += positions.size();
    return;
  }
  ++stats_.batches_failed;
  const auto fail_all = [&](int err) {
    for (std::size_t p : positions) result.failures.push_back(ElementFailure{m.ops[p].origin, err});
    stats_.element_errors += positions.size();
  };
  if (out.fatal != 0) {
    result.error = out.fatal == EPERM
                       ? "nftables: permission denied (CAP_NET_ADMIN is required)"
                       : "nftables: netlink send failed: " + errno_text(out.fatal);
    fail_all(out.fatal);
    return;
  }
  // Which ops the kernel complained about (messages of op i have seqs op_seq[i] ..).
  std::vector<int> op_err(positions.size(), 0);
  for (const auto& [s, e] : out.errors) {
    const auto it = std::upper_bound(m.op_seq.begin(), m.op_seq.end(), s);
    if (it == m.op_seq.begin()) continue;  // the batch header itself
    auto& slot = op_err[static_cast<std::size_t>(it - m.op_seq.begin() - 1)];
    if (slot == 0) slot = e;
  }
  if (positions.size() == 1) {
    int e = op_err[0] != 0 ? op_err[0] : out.batch_error != 0 ? out.batch_error : EIO;
    fail_all(e);
    return;
  }
  std::vector<std::size_t> clean, suspects;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    (op_err[i] != 0 ? suspects : clean).push_back(positions[i]);
  }
  if (out.complete && !suspects.empty()) {
    if (!clean.empty()) commit_positions(clean, result);
    for (std::size_t p : suspects) commit_positions({p}, result);
    return;
  }
  // Replies were lost, or the batch failed without naming a message: bisect.
  const auto mid = positions.begin() + static_cast<std::ptrdiff_t>(positions.size() / 2);
  commit_positions(std::vector<std::size_t>(positions.begin(), mid), result);
  commit_positions(std::vector<std::size_t>(mid, positions.end()), result);
}

bool NftBanBackend::list(std::vector<SetElement>& out, UnixMicros, std::string& error) {
  Impl& m = *impl_;
  out.clear();
  if (m.nl == nullptr) {
    error = "nftables: the backend was not prepared";
    return false;
  }
  std::vector<RawElement> raw;
  for (const bool is_v4 : {true, false}) {
    raw.clear();
    const char* set = is_v4 ? kSetIpv4 : kSetIpv6;
    if (const int err = m.dump_elements(set, is_v4, raw); err != 0) {
      error = std::string("nftables: cannot read set ") + set + ": " + errno_text(err);
      return false;
    }
    // Intervals are start elements followed by end elements (key = last + 1). At equal keys the
    // end of one interval sorts before the start of the next.
    std::sort(raw.begin(), raw.end(), [](const RawElement& a, const RawElement& b) {
      if (a.key.bytes != b.key.bytes) return a.key.bytes < b.key.bytes;
      return a.end && !b.end;
    });
    const RawElement* start = nullptr;
    const auto emit = [&](const RawElement& s, const IpAddress& last) {
      SetElement e;
      e.first = s.key;
      e.last = last;
      e.is_prefix = range_to_prefix(e.first, e.last, e.prefix);
      e.timeout_ms = s.timeout_ms;
      e.expires_in_ms = s.expires_ms;
      out.push_back(e);
    };
    for (const auto& r : raw) {
      if (r.end) {
        IpAddress last;
        if (start != nullptr && previous_address(r.key, last)) emit(*start, last);
        start = nullptr;  // an end without a start (nft's leading 0.0.0.0 end) is skipped
        continue;
      }
      if (start != nullptr) {  // a start runs until the next element in the kernel's lookup
        IpAddress last;
        if (previous_address(r.key, last)) emit(*start, last);
      }
      start = &r;
    }
    if (start != nullptr) {
      IpAddress last;
      last.is_v4 = is_v4;
      for (int i = 0; i < (is_v4 ? 4 : 16); ++i) last.bytes[static_cast<std::size_t>(i)] = 0xff;
      emit(*start, last);
    }
  }
  return true;
}

bool NftBanBackend::flush(std::string& error) {
  Impl& m = *impl_;
  if (m.nl == nullptr) {
    error = "nftables: the backend was not prepared";
    return false;
  }
  m.begin_batch();
  m.put_flush_set(kSetIpv4);
  m.put_flush_set(kSetIpv6);
  const Impl::Outcome out = m.send_batch();
  if (!out.committed) {
    ++stats_.batches_failed;
    const int e = out.fatal != 0 ? out.fatal : !out.errors.empty() ? out.errors.front().second : EIO;
    error = "nftables: cannot flush the ban sets: " + errno_text(e);
    return false;
  }
  ++stats_.batches_committed;
  return true;
}

}  // namespace authwall::actions
