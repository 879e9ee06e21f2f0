/*
 * ws: WebSocket framing (RFC 6455 section 5), allocation-free and resumable.
 *
 * The frame parser takes the bytes a peer sent, in pieces of any size, and
 * reports one event per call: a run of message payload (unmasked in place in
 * the caller's buffer, never copied), a complete control frame (its payload,
 * at most 125 bytes, is kept in the parser), or a protocol error with the
 * close code the server must send. It enforces every framing rule a server
 * must: client frames masked, no RSV bits without an extension, known
 * opcodes only, control frames short and unfragmented, continuation frames
 * only inside a fragmented message, text valid UTF-8 across fragment and
 * read boundaries, close codes and reasons well formed, messages no longer
 * than a limit.
 *
 * The UTF-8 validator is incremental: feed it any split of a text and it
 * fails at the first byte that cannot start or continue a valid sequence
 * (so a bad text is refused as early as possible, RFC 6455 section 8.1).
 *
 * No dependencies (fuzzed alone: fuzz/ws_fuzz.c). Nothing here is
 * thread-safe; a parser belongs to one connection.
 */
#ifndef SL_SERVER_WS_H
#define SL_SERVER_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sl_ws_opcode {
    SL_WS_OP_CONT = 0x0,
    SL_WS_OP_TEXT = 0x1,
    SL_WS_OP_BINARY = 0x2,
    SL_WS_OP_CLOSE = 0x8,
    SL_WS_OP_PING = 0x9,
    SL_WS_OP_PONG = 0xA,
};

/* Close codes the core sends (RFC 6455 section 7.4.1). */
enum sl_ws_close_code {
    SL_WS_CLOSE_NORMAL = 1000,
    SL_WS_CLOSE_GOING_AWAY = 1001,
    SL_WS_CLOSE_PROTOCOL = 1002,
    SL_WS_CLOSE_NO_STATUS = 1005, /* reported, never sent: the close frame had no code */
    SL_WS_CLOSE_ABNORMAL = 1006,  /* reported, never sent: no close frame at all */
    SL_WS_CLOSE_BAD_DATA = 1007,  /* text not UTF-8 */
    SL_WS_CLOSE_TOO_BIG = 1009,   /* message over the limit */
    SL_WS_CLOSE_INTERNAL = 1011,
    SL_WS_CLOSE_RESTART = 1012,
};

#define SL_WS_CONTROL_MAX 125u /* control frame payload bytes */
#define SL_WS_HEAD_MAX 14u     /* longest frame head: 2 + 8 length + 4 mask */

/* ---- UTF-8 ------------------------------------------------------------ */

/* Incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). Zero-initialised = at a character boundary. */
struct sl_ws_utf8 {
    uint8_t need;   /* continuation bytes still due */
    uint8_t lo, hi; /* the range the next continuation byte must fall in */
};

static inline void sl_ws_utf8_init(struct sl_ws_utf8 *u)
{
    u->need = 0;
    u->lo = 0x80;
    u->hi = 0xBF;
}

/* Feeds n bytes. Returns false at the first byte that makes the text invalid
 * whatever follows (the validator is then stuck: re-init it to reuse it). */
bool sl_ws_utf8_feed(struct sl_ws_utf8 *u, const uint8_t *p, size_t n);

/* True when the bytes fed so far end at a character boundary. */
static inline bool sl_ws_utf8_complete(const struct sl_ws_utf8 *u)
{
    return u->need == 0;
}

/* One-shot: the whole of p[0..n) is valid UTF-8. */
bool sl_ws_utf8_valid(const uint8_t *p, size_t n);

/* ---- frame parser ------------------------------------------------------ */

enum sl_ws_event_type {
    SL_WS_EV_MORE,  /* every byte given was consumed; call again with more */
    SL_WS_EV_DATA,  /* message payload: data/len in the caller's buffer */
    SL_WS_EV_PING,  /* a complete ping: data/len (<= 125) in the parser */
    SL_WS_EV_PONG,  /* a complete pong: data/len in the parser */
    SL_WS_EV_CLOSE, /* the peer's close: code (1005 when absent), reason in data/len */
    SL_WS_EV_ERROR, /* protocol violation: send a close with `code`, then close */
};

struct sl_ws_event {
    uint8_t type;    /* enum sl_ws_event_type */
    uint8_t opcode;  /* DATA: the message's, SL_WS_OP_TEXT or SL_WS_OP_BINARY */
    bool first;      /* DATA: these are the message's first bytes */
    bool fin;        /* DATA: the message ends with these bytes */
    bool compressed; /* DATA: the message had RSV1 (permessage-deflate): the
                      * bytes are deflate data, not validated as UTF-8 here */
    uint16_t code;   /* CLOSE: the peer's code; ERROR: the code to send */
    const uint8_t *data;
    size_t len;
};

struct sl_ws_parser {
    /* Settings: set after sl_ws_parser_init, before the first parse. */
    uint64_t max_message; /* payload bytes per message (fragments summed); 0 = no limit */
    bool require_mask;    /* server side: every client frame must be masked */
    bool rsv1_ok;         /* permessage-deflate negotiated: RSV1 on a message's first
                           * frame marks it compressed (RFC 7692 section 6) */

    /* State (private). */
    uint8_t state;
    uint8_t head_len; /* bytes of the frame head gathered in head[] */
    uint8_t opcode;   /* current frame's */
    bool fin;         /* current frame's */
    uint8_t msg_op;   /* message in progress: TEXT/BINARY, 0 = none */
    bool msg_started; /* the message's first DATA event went out */
    bool msg_z;       /* the message in progress is compressed (RSV1) */
    uint8_t mask_pos; /* offset into mask[] of the next payload byte */
    uint8_t ctrl_len; /* control payload bytes gathered */
    uint8_t mask[4];  /* zero when the frame is unmasked */
    uint8_t head[SL_WS_HEAD_MAX];
    uint64_t left;    /* payload bytes of the current frame not yet consumed */
    uint64_t msg_len; /* payload bytes of the message so far (frames announced) */
    struct sl_ws_utf8 utf8;
    uint8_t ctrl[SL_WS_CONTROL_MAX];
};

/* Resets p for a new connection (server side: masking required, no limit). */
void sl_ws_parser_init(struct sl_ws_parser *p);

/*
 * Consumes bytes from buf[0..len) up to and including the next event, which
 * it stores in *ev; returns how many bytes it consumed (<= len). DATA events
 * point into buf, whose payload bytes it unmasked in place. A frame of
 * empty payload still yields one DATA event (len 0), so an empty message is
 * seen. After CLOSE or ERROR the parser takes no more bytes: it returns 0 and
 * repeats the event; the connection is over as far as reading goes.
 *
 * Errors, with the close code in ev->code: 1002 for an unmasked frame (when
 * required), RSV2 or RSV3, RSV1 unless rsv1_ok and on the first frame of a
 * data message (never on a continuation or control frame), an unknown opcode, a control frame
 * fragmented or over 125 bytes, a continuation with no message, a new message inside a fragmented
 * one, a 64-bit length with the top bit set, a close payload of 1 byte or with a code that may not
 * be sent (1005, 1006, 1015, < 1000, 1016..2999, >= 5000, unassigned 1004); 1007 for text or a
 * close reason that is not UTF-8 (a compressed text is not checked: its bytes are deflate data; the
 * caller validates what it inflates); 1009 for a message longer than max_message (refused from the
 * frame head, before its payload is read).
 */
size_t sl_ws_parse(struct sl_ws_parser *p, uint8_t *buf, size_t len, struct sl_ws_event *ev);

/* True once the parser reported CLOSE or ERROR: it takes no more bytes. */
bool sl_ws_parser_done(const struct sl_ws_parser *p);

/* True when a message is partly received (fragments pending). */
static inline bool sl_ws_parser_in_message(const struct sl_ws_parser *p)
{
    return p->msg_op != 0;
}

/* ---- helpers ----------------------------------------------------------- */

/* A close code a peer may send on the wire (RFC 6455 7.4, IANA registry). */
bool sl_ws_close_code_ok(unsigned code);

/*
 * Formats an unmasked (server) frame head into out; returns its length
 * (2, 4 or 10 bytes).
 */
size_t sl_ws_frame_head(uint8_t out[10], unsigned opcode, bool fin, uint64_t len);

/* True when key is a Sec-WebSocket-Key the RFC allows: the base64 encoding
 * of 16 bytes (24 characters ending "=="). */
bool sl_ws_key_ok(const char *key, size_t len);

#ifdef __cplusplus
}
#endif

#endif
