/*
 * Junction plugin ABI: the only contract between the core and a plugin.
 *
 * Pure C. Versioned by JN_ABI_MAJOR / JN_ABI_MINOR:
 *   - major differs (in either direction)  -> the load is refused, with both versions named;
 *   - minor differs                         -> loads; fields and hooks are only ever appended,
 *     and each side reads `struct_size` to learn which ones the other side has.
 *
 * The one has-field rule (2.0): a struct that carries `struct_size` and was filled in by the
 * other side is read only through JN_HAS_FIELD(ptr, type, field); a field it lacks takes the
 * default documented beside it. Structs without `struct_size` (jn_str, jn_addr, jn_buf,
 * jn_media_meta, jn_send, jn_header, jn_codec, jn_datagram, jn_dns_srv, jn_dns_naptr,
 * jn_sip_target) are frozen for the whole major:
 * their size and every offset are pinned by the static asserts at the end of this file, and
 * their reserved fields must be zero. A frozen copy of the 2.0 header is compiled against this
 * one in the test suite (tests/abi/), so a 2.x that moves or resizes a field fails the build.
 *
 * Naming: jn_on_* hooks are implemented by the plugin and called by the core;
 *         jn_host_* services are implemented by the core and called by the plugin.
 *
 * Threading: every hook is called on the core's control loop thread, and every host service
 * must be called from that thread, inside a hook -- with one exception: a UDP socket bound
 * with jn_udp_options.loop = k (1..media_loops()) lives on media loop k, a core thread pinned
 * to a CPU. Its on_udp runs on that thread, and so do on_timer for timers started on that loop,
 * on_post for posts to it and (2.1) on_tcp for TCP connections made with jn_tcp_options.loop = k
 * (a listener's accepted ones included); from inside those hooks the plugin may call only the services
 * marked [media] below; any other service returns JN_ERR_WRONG_THREAD (or
 * does nothing, for the void ones) and logs the misuse. Hooks of one plugin therefore run on
 * several threads at once: the plugin guards the state its media loops share with its control
 * hooks (a lock per shard of sessions, taken once per on_udp batch, is the intended pattern).
 * Never hold such a lock while calling udp_bind or udp_close: the core briefly waits for the
 * media loop to finish its current batch there.
 *
 * Errors: every call returns a jn_status; nothing is thrown across this boundary. A plugin that
 * fails a hook explains why with host->set_error() before returning.
 *
 * Ownership words used on every pointer below:
 *   borrowed   valid for the duration of the call only; copy what you keep.
 *   core-owned allocated and freed by the core; the plugin must not free it.
 *   plugin-owned allocated and freed by the plugin; the core never frees it.
 *   static     lives as long as the loaded shared object (string literals, the info symbol).
 *
 * Resources (sockets, listeners, timers, HTTP/WS endpoints, bus subscriptions, routes, call
 * legs) are owned by the core and named by opaque jn_handle values. They belong to the plugin
 * *slot*, not to one loaded instance: they survive a hot reload unchanged, and the core closes
 * whatever a slot still holds when the plugin is unloaded. A plugin never touches libuv.
 */
#ifndef JUNCTION_ABI_H
#define JUNCTION_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JN_ABI_MAJOR 2
#define JN_ABI_MINOR 3  /* 2.3: streaming outbound HTTP: jn_http_client_request.stream and the
                           on_http_chunk hook (status + headers, then the body as it arrives),
                           read through JN_HAS_FIELD both ways (a 2.2 core: none, check
                           host->abi_minor >= 3; a 2.2 plugin: whole bodies, as before).
                           2.2: jn_create_args.state_dir (the plugin's own directory under the
                           server's state_dir), read through JN_HAS_FIELD (a 2.1 core: none).
                           2.1: JN_FRAME_SIP; TCP on media loops with frames in pool buffers; TLS
                           for TCP listen/connect; loop-local bus subscriptions; the worker pool
                           (work_submit, on_work_done). Appended fields are read through
                           JN_HAS_FIELD; a 2.1 plugin runs on a 2.0 core with the fallbacks that
                           plugin.hpp documents (JN_ERR_UNSUPPORTED). 
                           2.0: frozen value types pinned by static asserts; JN_HAS_FIELD;
                           jn_addr.scope_id; jn_buf.dst (IP_PKTINFO) and jn_buf.meta (media
                           metadata); jn_send flags (TOS, source address); call metadata
                           (from_name, headers); media streams with codec lists and transport
                           attributes (ICE, DTLS, SDES, mid, rtcp-mux); HTTP request and
                           response headers. 1.x (1.1 anchoring, 1.2 media loops) is refused. */

/* Whether `ptr` (a struct with struct_size, filled in by the other side) contains `field`.
 * The only way either side reads a struct of the other side's build. */
#define JN_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((const type*)0)->field))

#if defined(__GNUC__)
#define JN_EXPORT __attribute__((visibility("default")))
#else
#define JN_EXPORT
#endif

/* The two symbols a plugin exports. Nothing else is looked up. */
#define JN_PLUGIN_INFO_SYMBOL "junction_plugin_info"
#define JN_PLUGIN_FACTORY_SYMBOL "junction_plugin_create"

/* ---------------------------------------------------------------------------------------- */
/* Status codes                                                                              */
/* ---------------------------------------------------------------------------------------- */
typedef int32_t jn_status;
enum {
  JN_OK = 0,
  JN_PENDING = 1,           /* accepted; completion is reported later (e.g. on_stop)      */
  JN_ERR_INVALID = -1,      /* bad argument or malformed input                             */
  JN_ERR_NOT_FOUND = -2,    /* no such handle, key, route or plugin                        */
  JN_ERR_EXISTS = -3,       /* already exists (route, key, bind address)                   */
  JN_ERR_NOMEM = -4,        /* allocation or pool exhausted                                */
  JN_ERR_IO = -5,           /* an OS call failed; the log line carries errno's text        */
  JN_ERR_ABI = -6,          /* version or struct_size mismatch                             */
  JN_ERR_STATE = -7,        /* not allowed in the current state                            */
  JN_ERR_UNSUPPORTED = -8,  /* the other side does not implement this                      */
  JN_ERR_LIMIT = -9,        /* a size or count limit was hit (out buffer too small, ...)   */
  JN_ERR_INTERNAL = -10,    /* a bug: an exception was caught at the boundary, an invariant */
  JN_ERR_WRONG_THREAD = -11, /* called from a media loop, where this service is not allowed */
  JN_ERR_TIMEOUT = -12,      /* a deadline passed (a connect, an idle connection, a request) */
  JN_ERR_CANCELLED = -13     /* 2.1: cancelled before it ran (work_cancel, an unload)       */
};

/* An opaque resource name: (generation << 32) | index. 0 is never a valid handle. A handle
 * whose resource was closed is refused with JN_ERR_NOT_FOUND, never confused with a newer one. */
typedef uint64_t jn_handle;
#define JN_INVALID_HANDLE ((jn_handle)0)

typedef struct jn_host_ctx jn_host_ctx; /* opaque: the plugin's slot in the core; core-owned,
                                           valid from create until on_destroy returns */
typedef struct jn_plugin jn_plugin;     /* opaque: one loaded instance; plugin-owned */

/* ---------------------------------------------------------------------------------------- */
/* Value types, frozen for the whole major (no struct_size: they are passed by value or in    */
/* arrays, many on the media path). Sizes and offsets are pinned at the end of this file.     */
/* ---------------------------------------------------------------------------------------- */

/* A byte string that need not be NUL-terminated. ptr is borrowed unless stated. */
typedef struct jn_str {
  const char* ptr;
  size_t len;
} jn_str;

/* A transport address. Port in host byte order. family 0 means "unset". */
typedef struct jn_addr {
  uint8_t family; /* 4 or 6 */
  uint8_t reserved;
  uint16_t port;
  uint8_t ip[16];    /* IPv4 uses ip[0..3] in network byte order */
  uint32_t scope_id; /* IPv6 link-local scope (interface index), else 0 */
} jn_addr;

/* A name/value pair (an HTTP or SIP header, call metadata). Both borrowed. Frozen. */
typedef struct jn_header {
  jn_str name;
  jn_str value;
} jn_header;

/* Media metadata a buffer may carry beside its payload (valid when flags has JN_BUF_MEDIA), so a
 * media frame -- one access unit -- rides the bus by reference with its timing and kind. The
 * frame conventions (Annex-B video, parameter sets, audio framing) are sdk/media's. Frozen. */
typedef struct jn_media_meta {
  int64_t pts;          /* presentation time in clock_rate units */
  int64_t dts;          /* decode time in clock_rate units (= pts without B-frames) */
  uint32_t clock_rate;  /* Hz: 90000 video, 8000 G.711, 48000 Opus */
  uint32_t codec;       /* JN_CODEC_* */
  uint32_t frame_flags; /* JN_MF_* */
  uint32_t seq;         /* per-stream frame counter: a gap tells a consumer a frame was lost */
  uint16_t track;       /* track of its source (e.g. 0 video, 1 audio) */
  uint8_t kind;         /* JN_MEDIA_* */
  uint8_t reserved8;
  uint32_t reserved[3]; /* zero */
} jn_media_meta;

enum {
  JN_CODEC_NONE = 0, JN_CODEC_H264 = 1, JN_CODEC_H265 = 2, JN_CODEC_VP8 = 3, JN_CODEC_VP9 = 4,
  JN_CODEC_MPEG4 = 5, JN_CODEC_PCMA = 16, JN_CODEC_PCMU = 17, JN_CODEC_OPUS = 18,
  JN_CODEC_AAC = 19, JN_CODEC_G722 = 20, JN_CODEC_TELEPHONE_EVENT = 21,
  JN_CODEC_MPEG_PS = 32 /* a program stream passed through undemuxed */
};
enum {
  JN_MF_KEY = 1u << 0,        /* a keyframe (IDR / IRAP): a decoder can start here */
  JN_MF_CONFIG = 1u << 1,     /* carries parameter sets (SPS/PPS/VPS, AAC config) */
  JN_MF_DISCONT = 1u << 2,    /* timestamps or content jump (a loss, a source switch) */
  JN_MF_CORRUPT = 1u << 3     /* known damaged; consumers that need whole frames drop it */
};

/* A pooled, refcounted packet buffer. The struct is core-owned and frozen; a holder may move
 * `data` back into the headroom (to prepend a header), trim `len` or set `meta`, but only while it
 * holds the sole reference (host->buf_is_shared() == 0); a shared buffer is read-only. */
typedef struct jn_buf {
  uint8_t* data;      /* first valid byte; core-owned storage */
  uint32_t len;       /* valid bytes from data */
  uint32_t headroom;  /* writable bytes before data */
  uint32_t tailroom;  /* writable bytes after data + len */
  uint32_t flags;     /* JN_BUF_* */
  uint64_t rx_ns;     /* arrival time (CLOCK_MONOTONIC ns) for received packets, else 0 */
  jn_addr src;        /* source address for received packets */
  jn_addr dst;        /* received packets: the local address the datagram was sent to (from
                         IP_PKTINFO / IPV6_PKTINFO on a wildcard bind, else the bound address) */
  jn_media_meta meta; /* with JN_BUF_MEDIA; zero in a fresh buffer, copied by buf_copy */
  uint32_t reserved[4];
} jn_buf;

enum { JN_BUF_RTCP = 1u << 0, JN_BUF_MARKER = 1u << 1, JN_BUF_MEDIA = 1u << 2 /* meta is valid */ };

/* ---------------------------------------------------------------------------------------- */
/* Plugin info: exported data symbol, read before any call.                                  */
/* ---------------------------------------------------------------------------------------- */
typedef struct jn_plugin_info {
  uint32_t struct_size;
  uint16_t abi_major; /* JN_ABI_MAJOR the plugin was built against */
  uint16_t abi_minor; /* JN_ABI_MINOR the plugin was built against */
  const char* name;        /* static; [a-z0-9-]+, must match the conf's name */
  const char* version;     /* static; the plugin's own version, free text */
  const char* build_id;    /* static; unique per build (e.g. git hash + time) */
  const char* description; /* static; one line */
  const char* namespaces;  /* static; comma-separated URI schemes the plugin owns ("intercom") */
  uint32_t state_schema;     /* the save_state format version this build writes */
  uint32_t state_schema_min; /* the oldest format its on_restore_state accepts */
} jn_plugin_info;

/* ---------------------------------------------------------------------------------------- */
/* Event payloads delivered to hooks                                                         */
/* ---------------------------------------------------------------------------------------- */

/* TCP framing applied by the core on receive (frames) and send (prefix/suffix added). */
enum {
  JN_FRAME_RAW = 0,    /* byte chunks as they arrive; send writes bytes as given        */
  JN_FRAME_DELIM = 1,  /* frames end with a delimiter byte (e.g. '\0' or '\n')            */
  JN_FRAME_LEN16 = 2,  /* RFC 4571: 2-byte big-endian length before each frame          */
  JN_FRAME_SIP = 3     /* 2.1: RFC 3261 18.3 SIP messages (header block + Content-Length body);
                          CRLFCRLF keepalives arrive as the 4-byte frame "\r\n\r\n"; a stream
                          that cannot be framed (bad or conflicting Content-Length, a message over
                          max_frame) gets JN_TCP_OVERSIZE, then JN_TCP_CLOSED with JN_ERR_INVALID.
                          A 2.0 core refuses it (tcp_listen/tcp_connect return JN_ERR_INVALID). */
};

typedef struct jn_tcp_options {
  uint32_t struct_size;
  uint32_t framing;         /* JN_FRAME_* */
  uint8_t delimiter;        /* for JN_FRAME_DELIM */
  uint32_t max_frame;       /* bigger frames are reported as JN_TCP_OVERSIZE and skipped */
  uint32_t idle_timeout_ms; /* 0 = none; on expiry the core closes and reports JN_TCP_CLOSED */
  /* 2.1 (a 2.0 core ignores these fields: check host abi_minor >= 1 before relying on them) */
  uint32_t loop;            /* 0 = control loop; k = media loop k: the connection's (a listener's:
                               every accepted connection's) on_tcp runs on that loop's thread and
                               each frame arrives in a pool buffer (jn_tcp_event.buf). A listener
                               still accepts on the control loop. A k beyond media_loops() means
                               the control loop (as for UDP). With tls: JN_ERR_UNSUPPORTED. On a
                               media loop a LEN16 length over max_frame closes the connection
                               (OVERSIZE, then CLOSED with JN_ERR_INVALID). */
  uint32_t tls;             /* 1 = TLS over this listener / connection (OpenSSL, TLS 1.2+) */
  jn_str tls_cert;          /* listener: PEM certificate chain file (required with tls) */
  jn_str tls_key;           /* listener: PEM private key file */
  jn_str tls_ca_file;       /* connect: PEM CAs to trust instead of the system's (tests, private CAs);
                               the peer is always verified, there is no "insecure" switch */
  jn_str tls_server_name;   /* connect: SNI and the name the certificate must match; empty = the
                               host part of addr (an IP literal is matched as an IP SAN) */
} jn_tcp_options;

enum {
  JN_TCP_ACCEPTED = 1,  /* a listener accepted `conn`; data = NULL                          */
  JN_TCP_CONNECTED = 2, /* an outgoing connect succeeded                                    */
  JN_TCP_FRAME = 3,     /* one complete frame (or a raw chunk) in data/len                  */
  JN_TCP_OVERSIZE = 4,  /* a frame exceeded max_frame; it was discarded up to the next delimiter
                           (DELIM) or the connection will be closed (LEN16, cannot resync) */
  JN_TCP_CLOSED = 5     /* closed by the peer, an error, an idle timeout or tcp_close; the handle
                           is dead after this hook returns. status carries the reason: JN_OK
                           orderly, JN_ERR_TIMEOUT idle or connect timeout, JN_ERR_IO an error. */
};

typedef struct jn_tcp_event {
  uint32_t struct_size;
  uint32_t type;        /* JN_TCP_* */
  jn_handle conn;       /* the connection */
  jn_handle listener;   /* the listener that accepted it, or 0 */
  uint64_t cookie;      /* the connection's cookie (listener's cookie until set) */
  const uint8_t* data;  /* borrowed: frame bytes, without framing */
  size_t len;
  jn_addr peer;
  jn_status status;     /* for CLOSED: JN_OK = orderly, else the error */
  /* 2.1: FRAME on a media-loop connection: the pool buffer holding the frame (data == buf->data,
   * len == buf->len), borrowed for the hook: buf_ref to keep it, bus_publish_id it as is. NULL on
   * the control loop. */
  jn_buf* buf;
} jn_tcp_event;

typedef struct jn_datagram {
  jn_buf* buf; /* borrowed: take host->buf_ref() to keep it past the hook */
} jn_datagram;

typedef struct jn_http_request {
  uint32_t struct_size;
  jn_handle request;   /* answer with host->http_respond(); within 30 s or the core sends 504 */
  jn_handle endpoint;  /* the http_listen() handle */
  uint64_t cookie;
  jn_str method;       /* borrowed */
  jn_str path;         /* borrowed; without the query string */
  jn_str query;        /* borrowed; without '?' */
  jn_str body;         /* borrowed */
  jn_str content_type; /* borrowed */
  jn_str authorization;/* borrowed; the Authorization header, empty if none */
  jn_addr peer;
  const jn_header* headers; /* borrowed: every request header in arrival order (names as sent) */
  uint32_t header_count;
} jn_http_request;

/* An HTTP response (http_respond). Every pointer borrowed for the call. */
typedef struct jn_http_response {
  uint32_t struct_size;
  int32_t status;           /* 100..599 */
  jn_str content_type;      /* empty = application/json */
  jn_str body;
  const jn_header* headers; /* extra headers (Location, WWW-Authenticate, CORS, ...); the core
                               sets Content-Type, Content-Length and Connection itself and
                               refuses them here, and any name or value with CR, LF or NUL */
  uint32_t header_count;
} jn_http_response;

/* JN_WS_UPGRADE: a WebSocket upgrade request on the endpoint's ws_path, before anything is
 * accepted; `conn` is the upgrade's handle, valid during this hook only. Decide with
 * ws_upgrade_reply(conn, 101, subprotocol) or a refusal (e.g. 403 for an Origin not allowed);
 * without a reply the upgrade is accepted with the first offered subprotocol. During a hot reload
 * of the plugin (a few hundred microseconds) upgrades are refused with 503. Then JN_WS_OPEN on
 * the connection's own handle, with the same path/query/headers and the chosen subprotocol. */
enum { JN_WS_OPEN = 1, JN_WS_TEXT = 2, JN_WS_BINARY = 3, JN_WS_CLOSED = 4, JN_WS_UPGRADE = 5 };

typedef struct jn_ws_event {
  uint32_t struct_size;
  uint32_t type;      /* JN_WS_* */
  jn_handle conn;
  jn_handle endpoint;
  uint64_t cookie;    /* the connection's cookie (endpoint's until set) */
  const uint8_t* data;/* borrowed: one whole message */
  size_t len;
  jn_addr peer;
  /* UPGRADE and OPEN (borrowed; empty for the other types): */
  jn_str path;
  jn_str query;
  const jn_header* headers;    /* the upgrade request's headers, lower-case names (origin, ...) */
  const jn_str* subprotocols;  /* offered by the client (Sec-WebSocket-Protocol), in its order */
  uint32_t header_count;
  uint32_t subprotocol_count;
  jn_str subprotocol;          /* OPEN: the one accepted ("" = none) */
} jn_ws_event;

/* The neutral media description carried by offer/answer. */
enum { JN_MEDIA_AUDIO = 1, JN_MEDIA_VIDEO = 2, JN_MEDIA_DATA = 3 };
enum { JN_DIR_SENDRECV = 0, JN_DIR_SENDONLY = 1, JN_DIR_RECVONLY = 2, JN_DIR_INACTIVE = 3 };
/* a=setup (RFC 4145 / 5763): the TCP or DTLS role of this side. */
enum { JN_SETUP_NONE = 0, JN_SETUP_ACTPASS = 1, JN_SETUP_ACTIVE = 2, JN_SETUP_PASSIVE = 3,
       JN_SETUP_HOLDCONN = 4 };
enum {
  JN_MS_RTCP_MUX = 1u << 0,   /* RTP and RTCP share addr (a=rtcp-mux) */
  JN_MS_ICE_LITE = 1u << 1,   /* this side is ICE-lite */
  JN_MS_TCP_NEW = 1u << 2,    /* a=connection:new (else existing, RFC 4145) */
  JN_MS_END_OF_CANDIDATES = 1u << 3
};

/* One codec a stream can carry. Frozen; reserved fields zero. */
typedef struct jn_codec {
  jn_str name;           /* "PCMA", "PCMU", "OPUS", "H264", "H265", "PS", "telephone-event" */
  uint32_t payload_type; /* RTP payload type */
  uint32_t clock_rate;
  uint32_t channels;     /* audio; 0 = 1 */
  uint32_t reserved0;
  jn_str fmtp;           /* a=fmtp parameters as text ("packetization-mode=1;profile-level-id=42e01f") */
  jn_str rtcp_fb;        /* a=rtcp-fb values joined by ';' ("nack;nack pli;ccm fir") */
  uint32_t reserved[4];
} jn_codec;

typedef struct jn_media_stream {
  uint32_t struct_size;
  uint32_t kind;         /* JN_MEDIA_* */
  /* The chosen (first, preferred) codec; equal to codecs[0] when codecs are listed. */
  jn_str format;         /* "PCMA", "PCMU", "OPUS", "G722", "H264", "H265", "PS", "VP8", ... */
  uint32_t payload_type; /* RTP payload type, or 0 when not RTP */
  uint32_t clock_rate;
  uint32_t channels;
  jn_str transport;      /* "udp", "rtp/avp", "tcp/rtp/avp", "rtp/savp", "udp/tls/rtp/savpf" */
  jn_addr addr;          /* where this side receives; family 0 = not known yet */
  uint32_t ssrc;         /* 0 = unknown */
  uint32_t direction;    /* JN_DIR_* */
  jn_str bus_stream;     /* name of a bus stream already carrying this media, or empty */
  jn_str params;         /* what no field below holds, "k=v;k=v" (e.g. GB's "y=", "f=") */
  /* Every codec offered or accepted, in preference order (count 0: format etc. only). */
  const jn_codec* codecs; /* borrowed array */
  uint32_t codec_count;
  uint32_t setup;        /* JN_SETUP_* */
  uint32_t flags;        /* JN_MS_* */
  uint32_t reserved0;
  jn_addr rtcp_addr;     /* RTCP destination when not addr.port + 1 and not muxed; family 0 = default */
  jn_str mid;            /* a=mid (BUNDLE) */
  jn_str ice_ufrag;      /* ICE credentials of this side */
  jn_str ice_pwd;
  const jn_str* candidates; /* borrowed array: a=candidate values ("1 1 udp 2130706431 ...") */
  uint32_t candidate_count;
  uint32_t crypto_count;
  jn_str fingerprint;    /* DTLS certificate fingerprint, "sha-256 AB:CD:..." */
  const jn_str* crypto;  /* borrowed array: SDES a=crypto values ("1 AES_CM_128_HMAC_SHA1_80 inline:...") */
} jn_media_stream;

typedef struct jn_media_desc {
  uint32_t struct_size;
  uint32_t count;
  const jn_media_stream* const* streams; /* borrowed array of count pointers */
} jn_media_desc;

enum {
  JN_CALL_OFFER = 1,   /* new call (to a B-leg) or a re-offer mid-call                   */
  JN_CALL_RINGING = 2,
  JN_CALL_ANSWER = 3,
  JN_CALL_REJECT = 4,  /* before answer; code + reason                                     */
  JN_CALL_END = 5,     /* after answer, or a cancel before it; code + reason; leg dead after */
  JN_CALL_DTMF = 6,
  JN_CALL_INFO = 7     /* app event: info_type ("open-door", "unlock", "ptz") + info_body   */
};

typedef struct jn_call_event {
  uint32_t struct_size;
  uint32_t type;               /* JN_CALL_* */
  jn_str call_id;              /* the core's id of the whole call (set on delivery) */
  jn_str from;                 /* OFFER: caller URI ("xxxcid:door/1-1") */
  jn_str to;                   /* OFFER: callee URI as dialled (before rewrite) */
  jn_str target;               /* OFFER to a B-leg: the URI this leg was routed to */
  const jn_media_desc* media;  /* OFFER/ANSWER: borrowed, may be NULL */
  int32_t code;                /* REJECT/END: SIP-like code (486 busy, 408 timeout, 200 normal) */
  jn_str reason;               /* REJECT/END: text */
  jn_str dtmf;                 /* DTMF: digits */
  jn_str info_type;            /* INFO */
  jn_str info_body;            /* INFO: usually JSON */
  jn_str from_name;            /* OFFER: the caller's display name, may be empty */
  /* Call metadata, in order, carried with OFFER/ANSWER/REJECT/END/INFO from one leg to the
   * others: SIP "Subject" and "X-*" headers, "User-Agent", application data ("app-*"). Names
   * compare case-insensitively; a plugin maps its protocol's headers to and from these. */
  const jn_header* headers;    /* borrowed array */
  uint32_t header_count;
} jn_call_event;

typedef struct jn_admin_request {
  uint32_t struct_size;
  jn_handle reply;  /* answer with host->admin_reply() (now or later, within 30 s) */
  jn_str verb;      /* from POST /api/v1/plugins/NAME/cmd/VERB */
  jn_str body;      /* borrowed JSON text, may be empty */
} jn_admin_request;

/* Media anchoring. When the conf names an anchor plugin (server.media_anchor, e.g.
 * "rtp-relay"), the core passes the media of every call through it: the A-leg's offer before
 * the B-legs see it, each early media (a RINGING with media: under a fork, the branch the
 * caller hears, which may change several times) and the winning B-leg's answer before the
 * A-leg sees them (all as JN_ANCHOR_ANSWER from sender 1), and a DELETE when the call is over. The anchor answers with the media the other side must use (its own addresses).
 * Re-offers in an answered call are anchored too (sender says whose they are). */
enum { JN_ANCHOR_OFFER = 1, JN_ANCHOR_ANSWER = 2, JN_ANCHOR_DELETE = 3 };

typedef struct jn_anchor_request {
  uint32_t struct_size;
  uint32_t op;                /* JN_ANCHOR_* */
  jn_handle reply;            /* answer with host->anchor_reply() BEFORE on_anchor returns */
  jn_str call_id;             /* borrowed; the core's call id, the same in all three ops */
  const jn_media_desc* media; /* borrowed: OFFER the A-leg's offer, ANSWER the B-leg's answer;
                                 NULL for DELETE */
  uint32_t sender;            /* whose media this is: 0 = the A-leg's side, 1 = the B-leg's.
                                 The first offer is 0 and its answer 1; a re-offer in an
                                 answered call may come from either side, its answer from the
                                 other. */
} jn_anchor_request;

/* Asynchronous DNS (host->dns_resolve; the answer comes in on_dns). */
enum { JN_DNS_A = 1, JN_DNS_AAAA = 28, JN_DNS_SRV = 33, JN_DNS_NAPTR = 35,
       JN_DNS_SIP = 0x10000 /* RFC 3263 for a SIP URI's host: NAPTR -> SRV -> A/AAAA, in order */ };
enum { JN_DNS_OK = 0, JN_DNS_NODATA = 1, JN_DNS_NXDOMAIN = 2, JN_DNS_TIMEOUT = 3, JN_DNS_SERVFAIL = 4,
       JN_DNS_BADNAME = 5, JN_DNS_ERROR = 6 };
enum { JN_SIP_ANY = 0, JN_SIP_UDP = 1, JN_SIP_TCP = 2, JN_SIP_TLS = 3 };

typedef struct jn_dns_query {
  uint32_t struct_size;
  uint32_t type;       /* JN_DNS_A / AAAA / SRV / NAPTR / SIP */
  jn_str name;         /* borrowed; a literal address or "localhost" is answered without a query */
  uint32_t timeout_ms; /* 0 = 5000 */
  uint16_t port;       /* JN_DNS_SIP: the URI's explicit port, 0 = none (then NAPTR/SRV are used) */
  uint8_t transport;   /* JN_DNS_SIP: the URI's transport= (JN_SIP_*), JN_SIP_ANY = none */
  uint8_t sips;        /* JN_DNS_SIP: 1 for a sips: URI (TLS only) */
} jn_dns_query;

typedef struct jn_dns_srv { /* frozen */
  uint16_t priority, weight, port, reserved;
  jn_str target;
} jn_dns_srv;

typedef struct jn_dns_naptr { /* frozen */
  uint16_t order, preference;
  uint32_t reserved;
  jn_str flags, service, regexp, replacement;
} jn_dns_naptr;

typedef struct jn_sip_target { /* frozen: one place to send a SIP request, in the order to try */
  uint32_t transport; /* JN_SIP_UDP / TCP / TLS */
  uint32_t reserved;
  jn_addr addr;       /* IP and port */
  jn_str target;      /* the host name it came from */
} jn_sip_target;

typedef struct jn_dns_result {
  uint32_t struct_size;
  uint32_t status;      /* JN_DNS_* status */
  jn_handle query;      /* the dns_resolve handle (dead after this hook) */
  uint64_t cookie;
  jn_str name;          /* what was asked */
  jn_str error;         /* why, when status is not OK */
  uint32_t ttl;         /* seconds, the smallest of the records */
  uint32_t address_count;
  const jn_addr* addresses;   /* A / AAAA (port 0) */
  const jn_dns_srv* srv;      /* SRV, in the order to try (priority, then weight) */
  const jn_dns_naptr* naptr;  /* NAPTR, by order then preference */
  const jn_sip_target* targets; /* JN_DNS_SIP */
  uint32_t srv_count;
  uint32_t naptr_count;
  uint32_t target_count;
  uint32_t reserved0;
} jn_dns_result;

/* Outbound HTTP(S) (host->http_request; the answer comes in on_http_response). Webhooks, status
 * callbacks. https:// verifies the server against the system CAs (or ca_file) and its name. */
typedef struct jn_http_client_request {
  uint32_t struct_size;
  uint32_t timeout_ms;       /* the whole request, connect included; 0 = 10000 */
  jn_str method;             /* "GET", "POST", ... */
  jn_str url;                /* http://host[:port]/path or https://... (host may be a name) */
  const jn_header* headers;  /* extra request headers; Host, Content-Length, Connection are the core's */
  uint32_t header_count;
  uint32_t follow_redirects; /* 0: a 3xx is the answer; 1: up to 5, never from https to http */
  jn_str body;
  uint64_t max_response_body; /* bytes; 0 = 1 MiB; a longer body is the error "too large" */
  jn_str ca_file;            /* PEM CAs to trust instead of the system's (private CAs, tests) */
  /* 2.3 (a 2.2 core ignores it and answers with the whole body: check host->abi_minor >= 3) */
  uint32_t stream;           /* 1: deliver the response as it arrives through on_http_chunk (a
                                long-lived stream: HTTP-FLV, server-sent events, a log tail), then
                                on_http_response once at the end with an empty body. The plugin
                                must have on_http_chunk (else JN_ERR_INVALID). max_response_body
                                does not apply; timeout_ms bounds the wait for the response head
                                and then every silence between two reads (an idle timeout) */
  uint32_t reserved0;        /* zero */
} jn_http_client_request;

typedef struct jn_http_client_response {
  uint32_t struct_size;
  int32_t status;            /* the HTTP status; 0 when error is set */
  jn_handle request;         /* the http_request handle (dead after this hook) */
  uint64_t cookie;
  jn_str error;              /* empty on success, else why ("timeout", "connection refused",
                                "certificate verification failed: ...", "too large", ...) */
  const jn_header* headers;  /* in order */
  uint32_t header_count;
  uint32_t redirects;        /* how many were followed */
  jn_str body;
  jn_str url;                /* the URL that answered (after redirects) */
} jn_http_client_response;

/* 2.3: a piece of a streamed response (jn_http_client_request.stream = 1). The first call has
 * head = 1 with the final status and headers (redirects followed, 1xx skipped), and maybe the first
 * body bytes; every later call carries body bytes in arrival order, with the transfer coding
 * removed (chunked is decoded by the core). Delivery is synchronous, on the control loop, as the
 * socket is read (at most 16 KiB a call): a plugin that does not keep up holds the loop, so it
 * copies what it keeps and returns. To stop, host->cancel(request) inside or outside the hook: no
 * hook for that request follows (neither a chunk nor on_http_response). Otherwise on_http_response
 * ends it exactly once: error empty when the body ended by its framing (Content-Length, the last
 * chunk, the server's close of a close-delimited body), else set (a reset, a timeout, bad framing;
 * then the status too is 0, as for any failed request). All pointers borrowed for the call. */
typedef struct jn_http_client_chunk {
  uint32_t struct_size;
  int32_t status;            /* the HTTP status (every call) */
  jn_handle request;         /* the http_request handle */
  uint64_t cookie;
  const jn_header* headers;  /* head = 1: the response headers in order; else NULL */
  uint32_t header_count;
  uint32_t head;             /* 1 on the first call of a request, else 0 */
  jn_str data;               /* body bytes (may be empty on the first call) */
  jn_str url;                /* the URL that answered (after redirects) */
} jn_http_client_chunk;

/* ---------------------------------------------------------------------------------------- */
/* Plugin vtable: jn_on_* hooks. Any hook may be NULL except on_destroy.                     */
/* The jn_plugin* passed is the instance returned by the factory.                            */
/* ---------------------------------------------------------------------------------------- */
typedef struct jn_plugin_vtable {
  uint32_t struct_size;

  /* Fresh load only: begin serving (bind sockets, start timers). Not called after a reload:
   * on_restore_state takes its place, because the slot's resources already exist. */
  jn_status (*on_start)(jn_plugin* self);

  /* Unload or server stop: finish or hand off work. Return JN_OK when done, or JN_PENDING and
   * call host->stop_done() later (the core waits up to the conf's stop timeout). Resources are
   * closed by the core afterwards; the plugin need not close them. */
  jn_status (*on_stop)(jn_plugin* self);

  /* Free the instance. Must not call host services that create or close resources. */
  void (*on_destroy)(jn_plugin* self);

  /* Hot reload: serialise everything the next instance needs (including the handles it must
   * keep using) with host->state_append(ctx, sink, ...). */
  jn_status (*on_save_state)(jn_plugin* self, jn_handle sink);
  /* Hot reload: adopt the state written by the previous instance (schema = its state_schema).
   * Return JN_ERR_ABI to refuse a schema it cannot read; the reload then rolls back. */
  jn_status (*on_restore_state)(jn_plugin* self, uint32_t schema, const uint8_t* data, size_t len);

  void (*on_timer)(jn_plugin* self, jn_handle timer, uint64_t cookie);
  /* A batch of datagrams received on one socket, in arrival order. */
  void (*on_udp)(jn_plugin* self, jn_handle sock, uint64_t cookie, const jn_datagram* dgrams,
                 size_t count);
  void (*on_tcp)(jn_plugin* self, const jn_tcp_event* ev);
  void (*on_http)(jn_plugin* self, const jn_http_request* req);
  void (*on_ws)(jn_plugin* self, const jn_ws_event* ev);
  /* A packet published on a stream this plugin subscribed to. buf is borrowed and shared:
   * read-only; buf_ref() to keep it. */
  void (*on_bus)(jn_plugin* self, jn_handle subscription, uint64_t cookie, jn_buf* buf);
  /* An event on one of this plugin's call legs. For a new incoming call (type OFFER on a leg
   * the plugin has never seen) the leg's cookie is 0 until leg_set_cookie. */
  void (*on_call)(jn_plugin* self, jn_handle leg, uint64_t cookie, const jn_call_event* ev);
  /* An application event another plugin (or the admin API) published on a subscribed topic. */
  void (*on_event)(jn_plugin* self, jn_str topic, jn_str json);
  /* A plugin-specific admin command. */
  void (*on_admin)(jn_plugin* self, const jn_admin_request* req);

  /* Media anchoring (see jn_anchor_request). Must not call the call_* services. */
  void (*on_anchor)(jn_plugin* self, const jn_anchor_request* req);
  /* A host->post() to this loop arrived: runs on the loop it was posted to (see post). */
  void (*on_post)(jn_plugin* self, uint64_t cookie);
  /* The answer to a dns_resolve / http_request (all pointers borrowed for the call). */
  void (*on_dns)(jn_plugin* self, const jn_dns_result* result);
  void (*on_http_response)(jn_plugin* self, const jn_http_client_response* response);
  /* 2.1 (read by the core through JN_HAS_FIELD) */
  /* A host->work_submit job finished (status JN_OK: its run() returned), or was cancelled before
   * it started (JN_ERR_CANCELLED). Runs on the loop that submitted it, exactly once per job. */
  void (*on_work_done)(jn_plugin* self, jn_handle work, uint64_t cookie, jn_status status);
  /* 2.3 (read by the core through JN_HAS_FIELD) */
  /* A piece of a streamed http_request response (see jn_http_client_chunk). */
  void (*on_http_chunk)(jn_plugin* self, const jn_http_client_chunk* chunk);
} jn_plugin_vtable;

/* ---------------------------------------------------------------------------------------- */
/* Host services: jn_host_* functions. Every entry takes the slot's ctx first.               */
/* ---------------------------------------------------------------------------------------- */
enum { JN_LOG_ERROR = 0, JN_LOG_WARN = 1, JN_LOG_INFO = 2, JN_LOG_DEBUG = 3, JN_LOG_TRACE = 4 };

typedef struct jn_udp_options {
  uint32_t struct_size;
  uint32_t rcvbuf;        /* SO_RCVBUF bytes, 0 = core default (4 MiB) */
  uint32_t sndbuf;
  uint32_t reuse_port;    /* 1 = SO_REUSEPORT */
  uint32_t max_datagram;  /* largest datagram expected, 0 = 2048; longer ones are counted
                             in junction_udp_truncated_total and dropped */
  uint32_t loop;          /* 0 = the control loop; k in 1..media_loops() = media loop k (its
                             on_udp runs on that loop's thread, see Threading). A k beyond
                             media_loops() (e.g. none configured) means the control loop. */
} jn_udp_options;

/* One datagram to send: header bytes (copied into the buffer's headroom or sent as a separate
 * iovec, never copying the payload) followed by the buffer's bytes. Frozen (an array element on
 * the media path); reserved fields zero. */
enum {
  JN_SEND_TOS = 1u << 0, /* set the IP TOS / IPv6 traffic class of this datagram to `tos` */
  JN_SEND_FROM = 1u << 1 /* send from local address `from` (IP only; a wildcard-bound socket
                            answering from the address a request came to: jn_buf.dst) */
};
typedef struct jn_send {
  jn_handle sock;
  jn_addr to;
  const uint8_t* head; /* borrowed, may be NULL */
  uint32_t head_len;
  uint32_t buf_offset; /* skip this many bytes of buf (e.g. the original RTP header) */
  jn_buf* buf;         /* borrowed, may be NULL; the core takes its own ref if it queues */
  uint32_t flags;      /* JN_SEND_* */
  uint8_t tos;         /* with JN_SEND_TOS: DSCP << 2 | ECN */
  uint8_t reserved8[3];
  jn_addr from;        /* with JN_SEND_FROM */
  uint32_t reserved[4];/* zero; room for a GSO segment size */
} jn_send;

/* A socket on a free port of one of the core's named port ranges ([ports.NAME] in junction.toml),
 * shared by every media plugin so no two plugins hand-tune disjoint ranges. */
enum { JN_PROTO_UDP = 1, JN_PROTO_TCP = 2 };
typedef struct jn_port_request {
  uint32_t struct_size;
  uint32_t proto;            /* JN_PROTO_UDP, or JN_PROTO_TCP for a listener */
  jn_str range;              /* the range's NAME; borrowed */
  jn_str ip;                 /* the local address to bind: "127.0.0.1", "::", "0.0.0.0"; borrowed */
  uint32_t pair;             /* UDP: 1 = an even port for RTP and the next for RTCP (two sockets) */
  uint32_t reserved0;
  const jn_udp_options* udp; /* UDP: the sockets' options (media loop, buffers); may be NULL */
  const jn_tcp_options* tcp; /* TCP: the listener's options; may be NULL */
  uint64_t cookie;           /* the socket(s)' cookie */
} jn_port_request;

/* A job for the core's worker pool (host->work_submit, 2.1): blocking work -- file writes, an
 * encoder, SQLite, a synchronous library -- kept off every loop. on_work_done comes back on the
 * loop that submitted it (control or media loop). */
typedef struct jn_work {
  uint32_t struct_size;
  uint32_t reserved0;         /* zero */
  /* Runs on a worker thread (plugin code: the core keeps the plugin's .so mapped and its instance
   * alive until on_work_done has run, so a reload or unload waits for running jobs). It must not
   * call the host; it shares `arg` with the plugin's loops only through the plugin's own sync. */
  void (*run)(void* arg);
  void* arg;                  /* plugin-owned, passed to run as is */
  uint64_t cookie;            /* for on_work_done */
} jn_work;

/* Options of an HTTP endpoint (http_listen). Strings borrowed for the call. */
typedef struct jn_http_options {
  uint32_t struct_size;
  uint32_t reserved0;
  jn_str ws_path;  /* upgrade requests on this path become WebSocket connections; empty = none */
  jn_str tls_cert; /* PEM certificate (chain) file: the endpoint serves HTTPS and WSS only */
  jn_str tls_key;  /* PEM private key file; both or neither. Read at listen: a bad file is an error */
} jn_http_options;

typedef void (*jn_kv_visit)(void* arg, jn_str key, const uint8_t* value, size_t len);

typedef struct jn_host_api {
  uint32_t struct_size;
  uint16_t abi_major; /* the core's JN_ABI_MAJOR */
  uint16_t abi_minor; /* the core's JN_ABI_MINOR */

  /* --- diagnostics ---------------------------------------------------------------------- */
  void (*log)(jn_host_ctx* ctx, int level, jn_str message);            /* [media] */
  int (*log_level)(jn_host_ctx* ctx); /* [media] the plugin's level; skip formatting above it */
  /* Record why the current hook failed; the core puts it in the log and the admin reply. */
  void (*set_error)(jn_host_ctx* ctx, jn_str message);
  uint64_t (*now_ms)(jn_host_ctx* ctx); /* [media] the calling loop's cached monotonic time */

  /* --- configuration (the plugin's conf/plugins/NAME.toml) ------------------------------- */
  /* The whole table as JSON. Copied into out (NUL-terminated); JN_ERR_LIMIT and *needed set
   * when cap is too small. */
  jn_status (*config_json)(jn_host_ctx* ctx, char* out, size_t cap, size_t* needed);
  /* Report a bad key: logged as "file:line: key: reason". */
  void (*config_error)(jn_host_ctx* ctx, jn_str key_path, jn_str reason);

  /* --- timers ------------------------------------------------------------------------------ */
  /* [media] A timer of the calling loop: started from a media loop's hook it belongs to that
   * loop, its on_timer runs there, and only that loop may stop it (JN_ERR_WRONG_THREAD from any
   * other). To start one on media loop k from the control loop, post() to k and start it in
   * on_post. A one-shot timer's handle is dead once on_timer runs. Timers survive a hot reload
   * (a media-loop timer that fires during the swap is held and delivered after it). */
  jn_status (*timer_start)(jn_host_ctx* ctx, uint64_t delay_ms, uint64_t repeat_ms,
                           uint64_t cookie, jn_handle* out_timer);
  jn_status (*timer_stop)(jn_host_ctx* ctx, jn_handle timer);

  /* --- UDP --------------------------------------------------------------------------------- */
  /* addr is "ip:port" or "[v6]:port"; port 0 picks one (read it back with udp_local_addr). */
  jn_status (*udp_bind)(jn_host_ctx* ctx, jn_str addr, const jn_udp_options* opts,
                        uint64_t cookie, jn_handle* out_sock);
  jn_status (*udp_local_addr)(jn_host_ctx* ctx, jn_handle sock, jn_addr* out);
  /* Send a batch (sendmmsg per run of the same socket). Returns JN_OK when all were handed to
   * the kernel; per-item failures are counted in metrics, not returned.
   * [media] from media loop k: sockets of loop k only (JN_ERR_WRONG_THREAD otherwise). The
   * control loop may send on any socket, including media loop sockets. */
  jn_status (*udp_send)(jn_host_ctx* ctx, const jn_send* items, size_t count);
  jn_status (*udp_join_multicast)(jn_host_ctx* ctx, jn_handle sock, jn_str group, jn_str iface);
  jn_status (*udp_close)(jn_host_ctx* ctx, jn_handle sock);

  /* --- TCP (core-framed streams) ------------------------------------------------------------ */
  jn_status (*tcp_listen)(jn_host_ctx* ctx, jn_str addr, const jn_tcp_options* opts,
                          uint64_t cookie, jn_handle* out_listener);
  jn_status (*tcp_connect)(jn_host_ctx* ctx, jn_str addr, const jn_tcp_options* opts,
                           uint64_t cookie, jn_handle* out_conn);
  /* Sends one frame (the core adds the delimiter or the length prefix). data is borrowed.
   * JN_ERR_INVALID: the frame contains the delimiter, or is over 65535 bytes with LEN16;
   * JN_ERR_LIMIT: over 8 MiB already queued (a slow peer); JN_ERR_STATE: closing.
   * [media] 2.1, tcp_send, tcp_set_cookie and tcp_close: on media loop k, connections of loop k
   * only (a handle of another loop, of the control loop, or a closed one: JN_ERR_WRONG_THREAD).
   * The control loop may call all three on any connection: on a media loop's connection they are
   * handed to its loop (the frame copied; JN_ERR_LIMIT when 8 MiB of such sends wait for that
   * loop) and return before it acts -- a send to a connection that closed, or has not connected
   * yet, by then is dropped and counted (tcp_tx_refused in GET /api/v1/media). */
  jn_status (*tcp_send)(jn_host_ctx* ctx, jn_handle conn, const uint8_t* data, size_t len);
  jn_status (*tcp_set_cookie)(jn_host_ctx* ctx, jn_handle conn, uint64_t cookie);
  /* Flushes queued bytes, then closes; JN_TCP_CLOSED follows (on the connection's loop).
   * Listeners close at once (control loop only). */
  jn_status (*tcp_close)(jn_host_ctx* ctx, jn_handle conn_or_listener);

  /* --- HTTP and WebSocket endpoints (the core's libwebsockets on the core's loop) ----------- */
  /* An HTTP (and WebSocket) endpoint on addr, bound exactly there. opts may be NULL (plain
   * HTTP, no WebSocket). */
  jn_status (*http_listen)(jn_host_ctx* ctx, jn_str addr, const jn_http_options* opts, uint64_t cookie,
                           jn_handle* out_endpoint);
  /* Answers a request (resp borrowed). JN_ERR_INVALID for a bad status or header. */
  jn_status (*http_respond)(jn_host_ctx* ctx, jn_handle request, const jn_http_response* resp);
  jn_status (*ws_send)(jn_host_ctx* ctx, jn_handle conn, jn_str data, int binary);
  jn_status (*ws_set_cookie)(jn_host_ctx* ctx, jn_handle conn, uint64_t cookie);
  jn_status (*ws_close)(jn_host_ctx* ctx, jn_handle conn_or_endpoint);
  /* Inside on_ws(JN_WS_UPGRADE) only: 101 accepts (subprotocol: one the client offered, or
   * empty), 400..599 refuses with that HTTP status. JN_ERR_STATE outside the hook. */
  jn_status (*ws_upgrade_reply)(jn_host_ctx* ctx, jn_handle upgrade, int32_t status, jn_str subprotocol);

  /* --- buffers ------------------------------------------------------------------------------ */
  /* [media] all five. Each loop has its own pool; a buffer may be ref'd and unref'd from any
   * loop (refcounts are atomic) and returns to the pool it came from. */
  /* A buffer of at least `len` bytes with the pool's headroom; refcount 1, owned by caller. */
  jn_buf* (*buf_alloc)(jn_host_ctx* ctx, uint32_t len);
  void (*buf_ref)(jn_host_ctx* ctx, jn_buf* buf);
  void (*buf_unref)(jn_host_ctx* ctx, jn_buf* buf);
  int (*buf_is_shared)(jn_host_ctx* ctx, const jn_buf* buf);
  /* A private copy (refcount 1). Counted in junction_bus_payload_copies_total. */
  jn_buf* (*buf_copy)(jn_host_ctx* ctx, const jn_buf* buf);

  /* --- packet bus --------------------------------------------------------------------------- */
  /* Streams are named ("rtp-relay/session-42/a") and exist while someone subscribes; a packet
   * published to a stream nobody subscribes to is counted (unrouted) and dropped. Delivery is
   * synchronous, by reference: every subscriber's on_bus sees the same jn_buf (shared). */
  /* [media] From a media loop, a packet for a stream somebody subscribes to is handed (by
   * reference) to the control loop, where subscribers run; with no subscription anywhere it is
   * dropped there and then, at no cost. */
  jn_status (*bus_publish)(jn_host_ctx* ctx, jn_str stream, jn_buf* buf); /* buf borrowed */
  jn_status (*bus_subscribe)(jn_host_ctx* ctx, jn_str stream, uint64_t cookie,
                             jn_handle* out_subscription);
  jn_status (*bus_unsubscribe)(jn_host_ctx* ctx, jn_handle subscription);

  /* --- routing -------------------------------------------------------------------------------- */
  /* A dynamic exact route: calls to uri come to this plugin (a device registered). */
  jn_status (*route_add)(jn_host_ctx* ctx, jn_str uri, jn_handle* out_route);
  jn_status (*route_remove)(jn_host_ctx* ctx, jn_handle route);
  /* Where uri would go, as JSON {"strategy":..,"targets":[{"uri":..,"plugin":..}]}. */
  jn_status (*route_lookup)(jn_host_ctx* ctx, jn_str uri, char* out, size_t cap, size_t* needed);

  /* --- calls ---------------------------------------------------------------------------------- */
  /* Start a call from this plugin: ev->type must be JN_CALL_OFFER with from/to set. The core
   * routes `to`, offers B-legs to the targets, and reports back on out_leg via on_call.
   * JN_ERR_NOT_FOUND when nothing routes. */
  jn_status (*call_originate)(jn_host_ctx* ctx, const jn_call_event* ev, uint64_t cookie,
                              jn_handle* out_leg);
  /* Send RINGING / ANSWER / REJECT / END / DTMF / INFO / OFFER (re-offer) from one of this
   * plugin's legs. After END or REJECT the leg is dead. */
  jn_status (*call_send)(jn_host_ctx* ctx, jn_handle leg, const jn_call_event* ev);
  jn_status (*leg_set_cookie)(jn_host_ctx* ctx, jn_handle leg, uint64_t cookie);

  /* --- application events ---------------------------------------------------------------- */
  jn_status (*event_publish)(jn_host_ctx* ctx, jn_str topic, jn_str json);
  jn_status (*event_subscribe)(jn_host_ctx* ctx, jn_str topic_prefix);

  /* --- metrics (exported on /metrics with a plugin="NAME" label) ------------------------- */
  /* labels: "k=\"v\",k2=\"v2\"" or empty. */
  void (*counter_add)(jn_host_ctx* ctx, jn_str name, jn_str labels, uint64_t delta);
  void (*gauge_set)(jn_host_ctx* ctx, jn_str name, jn_str labels, double value);

  /* --- key-value store (SQLite; keys are private to the plugin) ---------------------------- */
  jn_status (*kv_put)(jn_host_ctx* ctx, jn_str key, const uint8_t* value, size_t len);
  /* Copies into out; JN_ERR_LIMIT with *needed when cap is too small; JN_ERR_NOT_FOUND. */
  jn_status (*kv_get)(jn_host_ctx* ctx, jn_str key, uint8_t* out, size_t cap, size_t* needed);
  jn_status (*kv_del)(jn_host_ctx* ctx, jn_str key);
  /* Calls visit for every key starting with prefix, in key order. Pointers borrowed. */
  jn_status (*kv_scan)(jn_host_ctx* ctx, jn_str prefix, jn_kv_visit visit, void* arg);

  /* --- lifecycle ------------------------------------------------------------------------- */
  jn_status (*state_append)(jn_host_ctx* ctx, jn_handle sink, const uint8_t* data, size_t len);
  /* Ends a JN_PENDING on_stop; callable from any control-loop hook, on_stop included. The instance
   * is destroyed on the loop's next turn, never inside the calling hook. A second call is ignored. */
  void (*stop_done)(jn_host_ctx* ctx);
  jn_status (*admin_reply)(jn_host_ctx* ctx, jn_handle reply, int http_status, jn_str json);

  /* --- media anchoring ---------------------------------------------------------------------- */
  /* The answer to an on_anchor request: JN_OK with the rewritten media (borrowed; same streams in
   * the same order, addresses replaced), or an error status (media NULL) to leave the media
   * untouched. For DELETE, media is NULL. */
  jn_status (*anchor_reply)(jn_host_ctx* ctx, jn_handle reply, jn_status status, const jn_media_desc* media);

  /* --- media loops and the bus by id -------------------------------------------------------- */
  /* [media] How many media loops the core runs (server.media_loops; 0 = media stays on the
   * control loop). Fixed for the process's lifetime. */
  uint32_t (*media_loops)(jn_host_ctx* ctx);
  /* A stream name's id, so the media path publishes without hashing the name per packet. The id
   * pins the stream and stays valid until bus_release_id (or the plugin's unload; it survives a
   * hot reload). Each bus_intern needs one bus_release_id. */
  jn_status (*bus_intern)(jn_host_ctx* ctx, jn_str stream, uint32_t* out_id);
  jn_status (*bus_release_id)(jn_host_ctx* ctx, uint32_t stream_id);
  /* [media] bus_publish by id (JN_ERR_NOT_FOUND for an id bus_intern never gave). */
  jn_status (*bus_publish_id)(jn_host_ctx* ctx, uint32_t stream_id, jn_buf* buf); /* borrowed */
  /* The media anchor lost a call's media (e.g. no packet for its timeout): the core ends the
   * call (both legs get END with code/reason; the CDR says "system"), and the anchor then gets
   * the call's DELETE. JN_ERR_NOT_FOUND when no such anchored call is up. */
  jn_status (*anchor_end)(jn_host_ctx* ctx, jn_str call_id, int32_t code, jn_str reason);

  /* --- port ranges ----------------------------------------------------------------------------- */
  /* Binds a socket on a free port of range req->range: out[0] is the socket (RTP, or the TCP
   * listener) and, for a UDP pair, out[1] the RTCP socket on the next port (else 0); *out_port is
   * out[0]'s port. out must hold 2 handles. The sockets are ordinary ones (udp_close / tcp_close;
   * the port is free again once closed). JN_ERR_NOT_FOUND: no such range; JN_ERR_LIMIT: no free
   * port (or pair) left in it; JN_ERR_INVALID: a bad request. */
  jn_status (*port_bind)(jn_host_ctx* ctx, const jn_port_request* req, jn_handle* out, uint32_t* out_port);

  /* --- between loops ----------------------------------------------------------------------------- */
  /* [media] Runs the plugin's on_post(cookie) on loop `loop` (0 = the control loop, k = media loop
   * k), soon and never inside this call; posts from one thread to one loop arrive in order. A
   * cookie is all it carries: hand data over through the plugin's own (locked or lock-free)
   * structures. Posts survive a hot reload (held during the swap, delivered to the new instance)
   * and are dropped when the plugin unloads. JN_ERR_INVALID: no such loop; JN_ERR_LIMIT: 65536
   * posts already queued for that loop (counted in junction_post_dropped_total). */
  jn_status (*post)(jn_host_ctx* ctx, uint32_t loop, uint64_t cookie);

  /* --- DNS and outbound HTTP (control loop; answers in on_dns / on_http_response) ---------------- */
  /* Never blocks: the answer comes in a later hook, exactly once, unless cancelled. Outstanding
   * ones survive a hot reload (the answer goes to the new instance) and are cancelled at unload.
   * JN_ERR_INVALID: a bad query/request (reason logged); JN_ERR_LIMIT: too many outstanding. */
  jn_status (*dns_resolve)(jn_host_ctx* ctx, const jn_dns_query* query, uint64_t cookie, jn_handle* out_query);
  jn_status (*http_request)(jn_host_ctx* ctx, const jn_http_client_request* request, uint64_t cookie,
                            jn_handle* out_request);
  /* Cancels a dns_resolve or http_request: its hook is not called. JN_ERR_NOT_FOUND once answered. */
  jn_status (*cancel)(jn_host_ctx* ctx, jn_handle query_or_request);

  /* --- libraries with process-wide state ---------------------------------------------------------
   * The rule: a library that keeps process-wide state and cannot be shut down and initialised
   * again (libsrtp2, usrsctp; OpenSSL 1.1+/3 needs nothing) is pinned through the core, once per
   * process, before its first use: library_pin makes it resident (RTLD_NODELETE) so unloading or
   * reloading the plugin that loaded it never unmaps it, and tells the caller whether it is the
   * first pin of that library in this process (*out_first = 1: call its global init now; 0: it is
   * initialised already, by this plugin's previous instance or another plugin). Never call its
   * global shutdown. The plugin's own code still unloads on every reload. JN_ERR_NOT_FOUND: the
   * library cannot be loaded (the reason is logged). */
  jn_status (*library_pin)(jn_host_ctx* ctx, jn_str soname, uint32_t* out_first);

  /* ============================ 2.1: read through JN_HAS_FIELD(host, jn_host_api, FIELD) ====== */
  /* --- loop-local bus subscriptions ---------------------------------------------------------------
   * [media] Subscribes, on the calling media loop, to the interned stream `stream_id`
   * (bus_intern): every bus_publish_id(stream_id, buf) made *on this loop* is delivered to
   * on_bus(subscription, cookie, buf) on this loop, synchronously and by reference (the publisher's
   * own jn_buf*, no copy, no queue, no lock), before the control loop's subscribers get their
   * hand-off. A producer and its consumers put their sockets on one loop to keep a media path on
   * one thread end to end. Publishes on other loops do not reach it. Delivery is held during a hot
   * reload of the subscriber and replayed in order; the subscription ends at unload.
   * JN_ERR_WRONG_THREAD: called on the control loop (use bus_subscribe); JN_ERR_NOT_FOUND: no such
   * stream id; JN_ERR_LIMIT: 4096 local subscriptions on this loop already. */
  jn_status (*bus_subscribe_local)(jn_host_ctx* ctx, uint32_t stream_id, uint64_t cookie, jn_handle* out);
  /* [media] On the loop that made it. No delivery of it after this returns. */
  jn_status (*bus_unsubscribe_local)(jn_host_ctx* ctx, jn_handle subscription);

  /* --- worker pool --------------------------------------------------------------------------------
   * [media] Queues work->run(work->arg) on a worker thread ([workers] threads in the conf, default
   * 4); on_work_done(handle, cookie, status) follows on the calling loop. Bounded: JN_ERR_LIMIT when
   * [workers] max_queued jobs wait already (default 1024). JN_ERR_INVALID: no run function or no
   * such loop. */
  jn_status (*work_submit)(jn_host_ctx* ctx, const jn_work* work, jn_handle* out);
  /* [media] A job that has not started will not run (its on_work_done gets JN_ERR_CANCELLED);
   * JN_ERR_STATE: it is running or done already (on_work_done still comes). */
  jn_status (*work_cancel)(jn_host_ctx* ctx, jn_handle work);
} jn_host_api;

/* Arguments to the factory. */
typedef struct jn_create_args {
  uint32_t struct_size;
  uint32_t restoring;  /* 1: a hot reload; on_restore_state follows instead of on_start */
  uint64_t generation; /* how many instances this slot has had before (0 on first load) */
  jn_str conf_path;    /* borrowed: the plugin's conf file, for messages */
  /* 2.2 (read through JN_HAS_FIELD(args, jn_create_args, state_dir); a 2.1 core has none) */
  jn_str state_dir;    /* borrowed: `<server.state_dir>/plugins/<slot name>`, created by the core
                          before the factory runs; the same path for every instance of the slot
                          (hot reloads, restarts): the plugin keeps its files there (downloads,
                          caches). The core never deletes it. Empty when it could not be created
                          (the reason is in the core's log). */
} jn_create_args;

/* The factory: the only function symbol the core looks up.
 *   host  static for the core's lifetime (core-owned)
 *   ctx   core-owned, see jn_host_ctx
 *   out_self    plugin-owned instance, freed by its on_destroy
 *   out_vtable  static (in the plugin's .so)
 * Must refuse (JN_ERR_ABI, with set_error) a host whose abi_major differs, or whose
 * struct_size lacks a service the plugin needs. */
typedef jn_status (*jn_plugin_factory)(const jn_host_api* host, jn_host_ctx* ctx,
                                       const jn_create_args* args, jn_plugin** out_self,
                                       const jn_plugin_vtable** out_vtable);

/* Convenience for C plugins. */
#define JN_STR(lit) ((jn_str){(lit), sizeof(lit) - 1})

/* The length of each table in 2.0: a 2.x peer's table is at least this long, and a field past it
 * (appended in 2.1 or later) is read only through JN_HAS_FIELD. */
#define JN_HOST_API_SIZE_2_0 (offsetof(jn_host_api, library_pin) + sizeof(void*))
#define JN_PLUGIN_VTABLE_SIZE_2_0 (offsetof(jn_plugin_vtable, on_http_response) + sizeof(void*))
#define JN_HOST_API_SIZE_2_1 (offsetof(jn_host_api, work_cancel) + sizeof(void*))
#define JN_PLUGIN_VTABLE_SIZE_2_1 (offsetof(jn_plugin_vtable, on_work_done) + sizeof(void*))
/* The create arguments of a 2.1 core (without state_dir). */
#define JN_CREATE_ARGS_SIZE_2_1 (offsetof(jn_create_args, conf_path) + sizeof(jn_str))
/* 2.2 appended no hook and no service; 2.3 appended on_http_chunk and jn_http_client_request.stream. */
#define JN_HOST_API_SIZE_2_2 JN_HOST_API_SIZE_2_1
#define JN_PLUGIN_VTABLE_SIZE_2_2 JN_PLUGIN_VTABLE_SIZE_2_1
#define JN_CREATE_ARGS_SIZE_2_2 (offsetof(jn_create_args, state_dir) + sizeof(jn_str))
#define JN_HTTP_CLIENT_REQUEST_SIZE_2_2 (offsetof(jn_http_client_request, ca_file) + sizeof(jn_str))

/* Layout pins: a build whose compiler lays out any public struct differently from 2.0 (a moved,
 * resized or removed field) fails here. Appending a field adds pins; it never changes one. */
#if defined(__cplusplus)
#define JN_ABI_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define JN_ABI_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
#define JN_ABI_PIN(type, field, off) \
  JN_ABI_STATIC_ASSERT(offsetof(type, field) == (off), "ABI layout: " #type "." #field " moved")
#define JN_ABI_PIN_SIZE(type, size) \
  JN_ABI_STATIC_ASSERT(sizeof(type) == (size), "ABI layout: sizeof(" #type ") changed")

/* --- layout pins (generated by tests/abi/gen_pins.py; LP64) --- */
#if !defined(JN_ABI_NO_PINS) && (defined(__LP64__) || defined(_LP64))
JN_ABI_PIN_SIZE(jn_str, 16);
JN_ABI_PIN(jn_str, ptr, 0);
JN_ABI_PIN(jn_str, len, 8);
JN_ABI_PIN_SIZE(jn_addr, 24);
JN_ABI_PIN(jn_addr, family, 0);
JN_ABI_PIN(jn_addr, reserved, 1);
JN_ABI_PIN(jn_addr, port, 2);
JN_ABI_PIN(jn_addr, ip, 4);
JN_ABI_PIN(jn_addr, scope_id, 20);
JN_ABI_PIN_SIZE(jn_header, 32);
JN_ABI_PIN(jn_header, name, 0);
JN_ABI_PIN(jn_header, value, 16);
JN_ABI_PIN_SIZE(jn_media_meta, 48);
JN_ABI_PIN(jn_media_meta, pts, 0);
JN_ABI_PIN(jn_media_meta, dts, 8);
JN_ABI_PIN(jn_media_meta, clock_rate, 16);
JN_ABI_PIN(jn_media_meta, codec, 20);
JN_ABI_PIN(jn_media_meta, frame_flags, 24);
JN_ABI_PIN(jn_media_meta, seq, 28);
JN_ABI_PIN(jn_media_meta, track, 32);
JN_ABI_PIN(jn_media_meta, kind, 34);
JN_ABI_PIN(jn_media_meta, reserved8, 35);
JN_ABI_PIN(jn_media_meta, reserved, 36);
JN_ABI_PIN_SIZE(jn_buf, 144);
JN_ABI_PIN(jn_buf, data, 0);
JN_ABI_PIN(jn_buf, len, 8);
JN_ABI_PIN(jn_buf, headroom, 12);
JN_ABI_PIN(jn_buf, tailroom, 16);
JN_ABI_PIN(jn_buf, flags, 20);
JN_ABI_PIN(jn_buf, rx_ns, 24);
JN_ABI_PIN(jn_buf, src, 32);
JN_ABI_PIN(jn_buf, dst, 56);
JN_ABI_PIN(jn_buf, meta, 80);
JN_ABI_PIN(jn_buf, reserved, 128);
JN_ABI_PIN_SIZE(jn_plugin_info, 56);
JN_ABI_PIN(jn_plugin_info, struct_size, 0);
JN_ABI_PIN(jn_plugin_info, abi_major, 4);
JN_ABI_PIN(jn_plugin_info, abi_minor, 6);
JN_ABI_PIN(jn_plugin_info, name, 8);
JN_ABI_PIN(jn_plugin_info, version, 16);
JN_ABI_PIN(jn_plugin_info, build_id, 24);
JN_ABI_PIN(jn_plugin_info, description, 32);
JN_ABI_PIN(jn_plugin_info, namespaces, 40);
JN_ABI_PIN(jn_plugin_info, state_schema, 48);
JN_ABI_PIN(jn_plugin_info, state_schema_min, 52);
JN_ABI_PIN_SIZE(jn_tcp_options, 96);
JN_ABI_PIN(jn_tcp_options, struct_size, 0);
JN_ABI_PIN(jn_tcp_options, framing, 4);
JN_ABI_PIN(jn_tcp_options, delimiter, 8);
JN_ABI_PIN(jn_tcp_options, max_frame, 12);
JN_ABI_PIN(jn_tcp_options, idle_timeout_ms, 16);
JN_ABI_PIN(jn_tcp_options, loop, 20);
JN_ABI_PIN(jn_tcp_options, tls, 24);
JN_ABI_PIN(jn_tcp_options, tls_cert, 32);
JN_ABI_PIN(jn_tcp_options, tls_key, 48);
JN_ABI_PIN(jn_tcp_options, tls_ca_file, 64);
JN_ABI_PIN(jn_tcp_options, tls_server_name, 80);
JN_ABI_PIN_SIZE(jn_tcp_event, 88);
JN_ABI_PIN(jn_tcp_event, struct_size, 0);
JN_ABI_PIN(jn_tcp_event, type, 4);
JN_ABI_PIN(jn_tcp_event, conn, 8);
JN_ABI_PIN(jn_tcp_event, listener, 16);
JN_ABI_PIN(jn_tcp_event, cookie, 24);
JN_ABI_PIN(jn_tcp_event, data, 32);
JN_ABI_PIN(jn_tcp_event, len, 40);
JN_ABI_PIN(jn_tcp_event, peer, 48);
JN_ABI_PIN(jn_tcp_event, status, 72);
JN_ABI_PIN(jn_tcp_event, buf, 80);
JN_ABI_PIN_SIZE(jn_datagram, 8);
JN_ABI_PIN(jn_datagram, buf, 0);
JN_ABI_PIN_SIZE(jn_http_request, 168);
JN_ABI_PIN(jn_http_request, struct_size, 0);
JN_ABI_PIN(jn_http_request, request, 8);
JN_ABI_PIN(jn_http_request, endpoint, 16);
JN_ABI_PIN(jn_http_request, cookie, 24);
JN_ABI_PIN(jn_http_request, method, 32);
JN_ABI_PIN(jn_http_request, path, 48);
JN_ABI_PIN(jn_http_request, query, 64);
JN_ABI_PIN(jn_http_request, body, 80);
JN_ABI_PIN(jn_http_request, content_type, 96);
JN_ABI_PIN(jn_http_request, authorization, 112);
JN_ABI_PIN(jn_http_request, peer, 128);
JN_ABI_PIN(jn_http_request, headers, 152);
JN_ABI_PIN(jn_http_request, header_count, 160);
JN_ABI_PIN_SIZE(jn_http_response, 56);
JN_ABI_PIN(jn_http_response, struct_size, 0);
JN_ABI_PIN(jn_http_response, status, 4);
JN_ABI_PIN(jn_http_response, content_type, 8);
JN_ABI_PIN(jn_http_response, body, 24);
JN_ABI_PIN(jn_http_response, headers, 40);
JN_ABI_PIN(jn_http_response, header_count, 48);
JN_ABI_PIN_SIZE(jn_ws_event, 144);
JN_ABI_PIN(jn_ws_event, struct_size, 0);
JN_ABI_PIN(jn_ws_event, type, 4);
JN_ABI_PIN(jn_ws_event, conn, 8);
JN_ABI_PIN(jn_ws_event, endpoint, 16);
JN_ABI_PIN(jn_ws_event, cookie, 24);
JN_ABI_PIN(jn_ws_event, data, 32);
JN_ABI_PIN(jn_ws_event, len, 40);
JN_ABI_PIN(jn_ws_event, peer, 48);
JN_ABI_PIN(jn_ws_event, path, 72);
JN_ABI_PIN(jn_ws_event, query, 88);
JN_ABI_PIN(jn_ws_event, headers, 104);
JN_ABI_PIN(jn_ws_event, subprotocols, 112);
JN_ABI_PIN(jn_ws_event, header_count, 120);
JN_ABI_PIN(jn_ws_event, subprotocol_count, 124);
JN_ABI_PIN(jn_ws_event, subprotocol, 128);
JN_ABI_PIN_SIZE(jn_codec, 80);
JN_ABI_PIN(jn_codec, name, 0);
JN_ABI_PIN(jn_codec, payload_type, 16);
JN_ABI_PIN(jn_codec, clock_rate, 20);
JN_ABI_PIN(jn_codec, channels, 24);
JN_ABI_PIN(jn_codec, reserved0, 28);
JN_ABI_PIN(jn_codec, fmtp, 32);
JN_ABI_PIN(jn_codec, rtcp_fb, 48);
JN_ABI_PIN(jn_codec, reserved, 64);
JN_ABI_PIN_SIZE(jn_media_stream, 256);
JN_ABI_PIN(jn_media_stream, struct_size, 0);
JN_ABI_PIN(jn_media_stream, kind, 4);
JN_ABI_PIN(jn_media_stream, format, 8);
JN_ABI_PIN(jn_media_stream, payload_type, 24);
JN_ABI_PIN(jn_media_stream, clock_rate, 28);
JN_ABI_PIN(jn_media_stream, channels, 32);
JN_ABI_PIN(jn_media_stream, transport, 40);
JN_ABI_PIN(jn_media_stream, addr, 56);
JN_ABI_PIN(jn_media_stream, ssrc, 80);
JN_ABI_PIN(jn_media_stream, direction, 84);
JN_ABI_PIN(jn_media_stream, bus_stream, 88);
JN_ABI_PIN(jn_media_stream, params, 104);
JN_ABI_PIN(jn_media_stream, codecs, 120);
JN_ABI_PIN(jn_media_stream, codec_count, 128);
JN_ABI_PIN(jn_media_stream, setup, 132);
JN_ABI_PIN(jn_media_stream, flags, 136);
JN_ABI_PIN(jn_media_stream, reserved0, 140);
JN_ABI_PIN(jn_media_stream, rtcp_addr, 144);
JN_ABI_PIN(jn_media_stream, mid, 168);
JN_ABI_PIN(jn_media_stream, ice_ufrag, 184);
JN_ABI_PIN(jn_media_stream, ice_pwd, 200);
JN_ABI_PIN(jn_media_stream, candidates, 216);
JN_ABI_PIN(jn_media_stream, candidate_count, 224);
JN_ABI_PIN(jn_media_stream, crypto_count, 228);
JN_ABI_PIN(jn_media_stream, fingerprint, 232);
JN_ABI_PIN(jn_media_stream, crypto, 248);
JN_ABI_PIN_SIZE(jn_media_desc, 16);
JN_ABI_PIN(jn_media_desc, struct_size, 0);
JN_ABI_PIN(jn_media_desc, count, 4);
JN_ABI_PIN(jn_media_desc, streams, 8);
JN_ABI_PIN_SIZE(jn_call_event, 184);
JN_ABI_PIN(jn_call_event, struct_size, 0);
JN_ABI_PIN(jn_call_event, type, 4);
JN_ABI_PIN(jn_call_event, call_id, 8);
JN_ABI_PIN(jn_call_event, from, 24);
JN_ABI_PIN(jn_call_event, to, 40);
JN_ABI_PIN(jn_call_event, target, 56);
JN_ABI_PIN(jn_call_event, media, 72);
JN_ABI_PIN(jn_call_event, code, 80);
JN_ABI_PIN(jn_call_event, reason, 88);
JN_ABI_PIN(jn_call_event, dtmf, 104);
JN_ABI_PIN(jn_call_event, info_type, 120);
JN_ABI_PIN(jn_call_event, info_body, 136);
JN_ABI_PIN(jn_call_event, from_name, 152);
JN_ABI_PIN(jn_call_event, headers, 168);
JN_ABI_PIN(jn_call_event, header_count, 176);
JN_ABI_PIN_SIZE(jn_admin_request, 48);
JN_ABI_PIN(jn_admin_request, struct_size, 0);
JN_ABI_PIN(jn_admin_request, reply, 8);
JN_ABI_PIN(jn_admin_request, verb, 16);
JN_ABI_PIN(jn_admin_request, body, 32);
JN_ABI_PIN_SIZE(jn_anchor_request, 48);
JN_ABI_PIN(jn_anchor_request, struct_size, 0);
JN_ABI_PIN(jn_anchor_request, op, 4);
JN_ABI_PIN(jn_anchor_request, reply, 8);
JN_ABI_PIN(jn_anchor_request, call_id, 16);
JN_ABI_PIN(jn_anchor_request, media, 32);
JN_ABI_PIN(jn_anchor_request, sender, 40);
JN_ABI_PIN_SIZE(jn_dns_query, 32);
JN_ABI_PIN(jn_dns_query, struct_size, 0);
JN_ABI_PIN(jn_dns_query, type, 4);
JN_ABI_PIN(jn_dns_query, name, 8);
JN_ABI_PIN(jn_dns_query, timeout_ms, 24);
JN_ABI_PIN(jn_dns_query, port, 28);
JN_ABI_PIN(jn_dns_query, transport, 30);
JN_ABI_PIN(jn_dns_query, sips, 31);
JN_ABI_PIN_SIZE(jn_dns_srv, 24);
JN_ABI_PIN(jn_dns_srv, priority, 0);
JN_ABI_PIN(jn_dns_srv, weight, 2);
JN_ABI_PIN(jn_dns_srv, port, 4);
JN_ABI_PIN(jn_dns_srv, reserved, 6);
JN_ABI_PIN(jn_dns_srv, target, 8);
JN_ABI_PIN_SIZE(jn_dns_naptr, 72);
JN_ABI_PIN(jn_dns_naptr, order, 0);
JN_ABI_PIN(jn_dns_naptr, preference, 2);
JN_ABI_PIN(jn_dns_naptr, reserved, 4);
JN_ABI_PIN(jn_dns_naptr, flags, 8);
JN_ABI_PIN(jn_dns_naptr, service, 24);
JN_ABI_PIN(jn_dns_naptr, regexp, 40);
JN_ABI_PIN(jn_dns_naptr, replacement, 56);
JN_ABI_PIN_SIZE(jn_sip_target, 48);
JN_ABI_PIN(jn_sip_target, transport, 0);
JN_ABI_PIN(jn_sip_target, reserved, 4);
JN_ABI_PIN(jn_sip_target, addr, 8);
JN_ABI_PIN(jn_sip_target, target, 32);
JN_ABI_PIN_SIZE(jn_dns_result, 112);
JN_ABI_PIN(jn_dns_result, struct_size, 0);
JN_ABI_PIN(jn_dns_result, status, 4);
JN_ABI_PIN(jn_dns_result, query, 8);
JN_ABI_PIN(jn_dns_result, cookie, 16);
JN_ABI_PIN(jn_dns_result, name, 24);
JN_ABI_PIN(jn_dns_result, error, 40);
JN_ABI_PIN(jn_dns_result, ttl, 56);
JN_ABI_PIN(jn_dns_result, address_count, 60);
JN_ABI_PIN(jn_dns_result, addresses, 64);
JN_ABI_PIN(jn_dns_result, srv, 72);
JN_ABI_PIN(jn_dns_result, naptr, 80);
JN_ABI_PIN(jn_dns_result, targets, 88);
JN_ABI_PIN(jn_dns_result, srv_count, 96);
JN_ABI_PIN(jn_dns_result, naptr_count, 100);
JN_ABI_PIN(jn_dns_result, target_count, 104);
JN_ABI_PIN(jn_dns_result, reserved0, 108);
JN_ABI_PIN_SIZE(jn_http_client_request, 104);
JN_ABI_PIN(jn_http_client_request, struct_size, 0);
JN_ABI_PIN(jn_http_client_request, timeout_ms, 4);
JN_ABI_PIN(jn_http_client_request, method, 8);
JN_ABI_PIN(jn_http_client_request, url, 24);
JN_ABI_PIN(jn_http_client_request, headers, 40);
JN_ABI_PIN(jn_http_client_request, header_count, 48);
JN_ABI_PIN(jn_http_client_request, follow_redirects, 52);
JN_ABI_PIN(jn_http_client_request, body, 56);
JN_ABI_PIN(jn_http_client_request, max_response_body, 72);
JN_ABI_PIN(jn_http_client_request, ca_file, 80);
JN_ABI_PIN(jn_http_client_request, stream, 96);
JN_ABI_PIN(jn_http_client_request, reserved0, 100);
JN_ABI_PIN_SIZE(jn_http_client_response, 88);
JN_ABI_PIN(jn_http_client_response, struct_size, 0);
JN_ABI_PIN(jn_http_client_response, status, 4);
JN_ABI_PIN(jn_http_client_response, request, 8);
JN_ABI_PIN(jn_http_client_response, cookie, 16);
JN_ABI_PIN(jn_http_client_response, error, 24);
JN_ABI_PIN(jn_http_client_response, headers, 40);
JN_ABI_PIN(jn_http_client_response, header_count, 48);
JN_ABI_PIN(jn_http_client_response, redirects, 52);
JN_ABI_PIN(jn_http_client_response, body, 56);
JN_ABI_PIN(jn_http_client_response, url, 72);
JN_ABI_PIN_SIZE(jn_http_client_chunk, 72);
JN_ABI_PIN(jn_http_client_chunk, struct_size, 0);
JN_ABI_PIN(jn_http_client_chunk, status, 4);
JN_ABI_PIN(jn_http_client_chunk, request, 8);
JN_ABI_PIN(jn_http_client_chunk, cookie, 16);
JN_ABI_PIN(jn_http_client_chunk, headers, 24);
JN_ABI_PIN(jn_http_client_chunk, header_count, 32);
JN_ABI_PIN(jn_http_client_chunk, head, 36);
JN_ABI_PIN(jn_http_client_chunk, data, 40);
JN_ABI_PIN(jn_http_client_chunk, url, 56);
JN_ABI_PIN_SIZE(jn_plugin_vtable, 168);
JN_ABI_PIN(jn_plugin_vtable, struct_size, 0);
JN_ABI_PIN(jn_plugin_vtable, on_start, 8);
JN_ABI_PIN(jn_plugin_vtable, on_stop, 16);
JN_ABI_PIN(jn_plugin_vtable, on_destroy, 24);
JN_ABI_PIN(jn_plugin_vtable, on_save_state, 32);
JN_ABI_PIN(jn_plugin_vtable, on_restore_state, 40);
JN_ABI_PIN(jn_plugin_vtable, on_timer, 48);
JN_ABI_PIN(jn_plugin_vtable, on_udp, 56);
JN_ABI_PIN(jn_plugin_vtable, on_tcp, 64);
JN_ABI_PIN(jn_plugin_vtable, on_http, 72);
JN_ABI_PIN(jn_plugin_vtable, on_ws, 80);
JN_ABI_PIN(jn_plugin_vtable, on_bus, 88);
JN_ABI_PIN(jn_plugin_vtable, on_call, 96);
JN_ABI_PIN(jn_plugin_vtable, on_event, 104);
JN_ABI_PIN(jn_plugin_vtable, on_admin, 112);
JN_ABI_PIN(jn_plugin_vtable, on_anchor, 120);
JN_ABI_PIN(jn_plugin_vtable, on_post, 128);
JN_ABI_PIN(jn_plugin_vtable, on_dns, 136);
JN_ABI_PIN(jn_plugin_vtable, on_http_response, 144);
JN_ABI_PIN(jn_plugin_vtable, on_work_done, 152);
JN_ABI_PIN(jn_plugin_vtable, on_http_chunk, 160);
JN_ABI_PIN_SIZE(jn_udp_options, 24);
JN_ABI_PIN(jn_udp_options, struct_size, 0);
JN_ABI_PIN(jn_udp_options, rcvbuf, 4);
JN_ABI_PIN(jn_udp_options, sndbuf, 8);
JN_ABI_PIN(jn_udp_options, reuse_port, 12);
JN_ABI_PIN(jn_udp_options, max_datagram, 16);
JN_ABI_PIN(jn_udp_options, loop, 20);
JN_ABI_PIN_SIZE(jn_send, 104);
JN_ABI_PIN(jn_send, sock, 0);
JN_ABI_PIN(jn_send, to, 8);
JN_ABI_PIN(jn_send, head, 32);
JN_ABI_PIN(jn_send, head_len, 40);
JN_ABI_PIN(jn_send, buf_offset, 44);
JN_ABI_PIN(jn_send, buf, 48);
JN_ABI_PIN(jn_send, flags, 56);
JN_ABI_PIN(jn_send, tos, 60);
JN_ABI_PIN(jn_send, reserved8, 61);
JN_ABI_PIN(jn_send, from, 64);
JN_ABI_PIN(jn_send, reserved, 88);
JN_ABI_PIN_SIZE(jn_port_request, 72);
JN_ABI_PIN(jn_port_request, struct_size, 0);
JN_ABI_PIN(jn_port_request, proto, 4);
JN_ABI_PIN(jn_port_request, range, 8);
JN_ABI_PIN(jn_port_request, ip, 24);
JN_ABI_PIN(jn_port_request, pair, 40);
JN_ABI_PIN(jn_port_request, reserved0, 44);
JN_ABI_PIN(jn_port_request, udp, 48);
JN_ABI_PIN(jn_port_request, tcp, 56);
JN_ABI_PIN(jn_port_request, cookie, 64);
JN_ABI_PIN_SIZE(jn_work, 32);
JN_ABI_PIN(jn_work, struct_size, 0);
JN_ABI_PIN(jn_work, reserved0, 4);
JN_ABI_PIN(jn_work, run, 8);
JN_ABI_PIN(jn_work, arg, 16);
JN_ABI_PIN(jn_work, cookie, 24);
JN_ABI_PIN_SIZE(jn_http_options, 56);
JN_ABI_PIN(jn_http_options, struct_size, 0);
JN_ABI_PIN(jn_http_options, reserved0, 4);
JN_ABI_PIN(jn_http_options, ws_path, 8);
JN_ABI_PIN(jn_http_options, tls_cert, 24);
JN_ABI_PIN(jn_http_options, tls_key, 40);
JN_ABI_PIN_SIZE(jn_host_api, 528);
JN_ABI_PIN(jn_host_api, struct_size, 0);
JN_ABI_PIN(jn_host_api, abi_major, 4);
JN_ABI_PIN(jn_host_api, abi_minor, 6);
JN_ABI_PIN(jn_host_api, log, 8);
JN_ABI_PIN(jn_host_api, log_level, 16);
JN_ABI_PIN(jn_host_api, set_error, 24);
JN_ABI_PIN(jn_host_api, now_ms, 32);
JN_ABI_PIN(jn_host_api, config_json, 40);
JN_ABI_PIN(jn_host_api, config_error, 48);
JN_ABI_PIN(jn_host_api, timer_start, 56);
JN_ABI_PIN(jn_host_api, timer_stop, 64);
JN_ABI_PIN(jn_host_api, udp_bind, 72);
JN_ABI_PIN(jn_host_api, udp_local_addr, 80);
JN_ABI_PIN(jn_host_api, udp_send, 88);
JN_ABI_PIN(jn_host_api, udp_join_multicast, 96);
JN_ABI_PIN(jn_host_api, udp_close, 104);
JN_ABI_PIN(jn_host_api, tcp_listen, 112);
JN_ABI_PIN(jn_host_api, tcp_connect, 120);
JN_ABI_PIN(jn_host_api, tcp_send, 128);
JN_ABI_PIN(jn_host_api, tcp_set_cookie, 136);
JN_ABI_PIN(jn_host_api, tcp_close, 144);
JN_ABI_PIN(jn_host_api, http_listen, 152);
JN_ABI_PIN(jn_host_api, http_respond, 160);
JN_ABI_PIN(jn_host_api, ws_send, 168);
JN_ABI_PIN(jn_host_api, ws_set_cookie, 176);
JN_ABI_PIN(jn_host_api, ws_close, 184);
JN_ABI_PIN(jn_host_api, ws_upgrade_reply, 192);
JN_ABI_PIN(jn_host_api, buf_alloc, 200);
JN_ABI_PIN(jn_host_api, buf_ref, 208);
JN_ABI_PIN(jn_host_api, buf_unref, 216);
JN_ABI_PIN(jn_host_api, buf_is_shared, 224);
JN_ABI_PIN(jn_host_api, buf_copy, 232);
JN_ABI_PIN(jn_host_api, bus_publish, 240);
JN_ABI_PIN(jn_host_api, bus_subscribe, 248);
JN_ABI_PIN(jn_host_api, bus_unsubscribe, 256);
JN_ABI_PIN(jn_host_api, route_add, 264);
JN_ABI_PIN(jn_host_api, route_remove, 272);
JN_ABI_PIN(jn_host_api, route_lookup, 280);
JN_ABI_PIN(jn_host_api, call_originate, 288);
JN_ABI_PIN(jn_host_api, call_send, 296);
JN_ABI_PIN(jn_host_api, leg_set_cookie, 304);
JN_ABI_PIN(jn_host_api, event_publish, 312);
JN_ABI_PIN(jn_host_api, event_subscribe, 320);
JN_ABI_PIN(jn_host_api, counter_add, 328);
JN_ABI_PIN(jn_host_api, gauge_set, 336);
JN_ABI_PIN(jn_host_api, kv_put, 344);
JN_ABI_PIN(jn_host_api, kv_get, 352);
JN_ABI_PIN(jn_host_api, kv_del, 360);
JN_ABI_PIN(jn_host_api, kv_scan, 368);
JN_ABI_PIN(jn_host_api, state_append, 376);
JN_ABI_PIN(jn_host_api, stop_done, 384);
JN_ABI_PIN(jn_host_api, admin_reply, 392);
JN_ABI_PIN(jn_host_api, anchor_reply, 400);
JN_ABI_PIN(jn_host_api, media_loops, 408);
JN_ABI_PIN(jn_host_api, bus_intern, 416);
JN_ABI_PIN(jn_host_api, bus_release_id, 424);
JN_ABI_PIN(jn_host_api, bus_publish_id, 432);
JN_ABI_PIN(jn_host_api, anchor_end, 440);
JN_ABI_PIN(jn_host_api, port_bind, 448);
JN_ABI_PIN(jn_host_api, post, 456);
JN_ABI_PIN(jn_host_api, dns_resolve, 464);
JN_ABI_PIN(jn_host_api, http_request, 472);
JN_ABI_PIN(jn_host_api, cancel, 480);
JN_ABI_PIN(jn_host_api, library_pin, 488);
JN_ABI_PIN(jn_host_api, bus_subscribe_local, 496);
JN_ABI_PIN(jn_host_api, bus_unsubscribe_local, 504);
JN_ABI_PIN(jn_host_api, work_submit, 512);
JN_ABI_PIN(jn_host_api, work_cancel, 520);
JN_ABI_PIN_SIZE(jn_create_args, 48);
JN_ABI_PIN(jn_create_args, struct_size, 0);
JN_ABI_PIN(jn_create_args, restoring, 4);
JN_ABI_PIN(jn_create_args, generation, 8);
JN_ABI_PIN(jn_create_args, conf_path, 16);
JN_ABI_PIN(jn_create_args, state_dir, 32);
#endif
/* --- end of layout pins --- */

#ifdef __cplusplus
}
#endif
#endif /* JUNCTION_ABI_H */
