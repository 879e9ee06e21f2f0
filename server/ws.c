/*
 * ws: WebSocket frame parser and UTF-8 validator (see ws.h).
 */
#include "server/ws.h"

#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------ */

/*
 * Classifies a lead byte: how many continuation bytes follow and the range
 * the first of them must fall in (the ranges exclude overlongs, surrogates
 * and code points past U+10FFFF; RFC 3629 section 4). Returns false for a
 * byte that cannot start a character.
 */
static bool utf8_lead(uint8_t b, struct sl_ws_utf8 *u)
{
    u->lo = 0x80;
    u->hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        u->need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        u->need = 2;
        if (b == 0xE0)
            u->lo = 0xA0;
        else if (b == 0xED)
            u->hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        u->need = 3;
        if (b == 0xF0)
            u->lo = 0x90;
        else if (b == 0xF4)
            u->hi = 0x8F;
    } else {
        return false;
    }
    return true;
}

/* Skips ASCII eight bytes at a time; returns the index of the first
 * non-ASCII byte (or n). */
static size_t ascii_run(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v & 0x8080808080808080ull)
            break;
    }
    while (i < n && p[i] < 0x80)
        i++;
    return i;
}

bool sl_ws_utf8_feed(struct sl_ws_utf8 *u, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (u->need == 0) {
            i += ascii_run(p + i, n - i);
            if (i == n)
                break;
            if (!utf8_lead(p[i], u)) {
                u->need = 0xFF; /* stuck: no byte can follow */
                return false;
            }
            i++;
            continue;
        }
        if (u->need == 0xFF || p[i] < u->lo || p[i] > u->hi) {
            u->need = 0xFF;
            return false;
        }
        u->need--;
        u->lo = 0x80;
        u->hi = 0xBF;
        i++;
    }
    return u->need != 0xFF;
}

bool sl_ws_utf8_valid(const uint8_t *p, size_t n)
{
    struct sl_ws_utf8 u;
    sl_ws_utf8_init(&u);
    return sl_ws_utf8_feed(&u, p, n) && sl_ws_utf8_complete(&u);
}

/* ---- helpers ----------------------------------------------------------- */

bool sl_ws_close_code_ok(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return true; /* registered (3xxx) and private (4xxx) use */
    switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014:
        return true;
    default:
        return false; /* 1004 reserved, 1005/1006/1015 never on the wire */
    }
}

size_t sl_ws_frame_head(uint8_t out[10], unsigned opcode, bool fin, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

static bool b64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

bool sl_ws_key_ok(const char *key, size_t len)
{
    /* 16 bytes = 5 groups of 3 bytes (20 chars) + 1 byte (2 chars + "=="). */
    if (len != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!b64_char(key[i]))
            return false;
    /* The last character carries 2 bits of the 16th byte: the other 4 must
     * be zero in a canonical encoding (A, Q, g or w). */
    return strchr("AQgw", key[21]) != NULL;
}

/* ---- frame parser ------------------------------------------------------ */

enum {
    ST_HEAD,    /* gathering the frame head */
    ST_PAYLOAD, /* data frame payload */
    ST_CONTROL, /* control frame payload, into p->ctrl */
    ST_DONE,    /* CLOSE or ERROR reported: sticky */
};

void sl_ws_parser_init(struct sl_ws_parser *p)
{
    memset(p, 0, sizeof *p);
    p->require_mask = true;
    sl_ws_utf8_init(&p->utf8);
}

bool sl_ws_parser_done(const struct sl_ws_parser *p)
{
    return p->state == ST_DONE;
}

/* Moves to ST_DONE with an error event. */
static size_t fail(struct sl_ws_parser *p, struct sl_ws_event *ev, uint16_t code, size_t used)
{
    p->state = ST_DONE;
    memset(ev, 0, sizeof *ev);
    ev->type = SL_WS_EV_ERROR;
    ev->code = code;
    p->ctrl_len = 0;
    p->opcode = 0;
    p->mask[0] = (uint8_t)(code >> 8); /* remembered for the sticky repeat */
    p->mask[1] = (uint8_t)code;
    return used;
}

/* How many head bytes the frame needs, judging by the 2 first. */
static unsigned head_need(const uint8_t *h)
{
    unsigned n = 2;
    if ((h[1] & 0x7F) == 126)
        n += 2;
    else if ((h[1] & 0x7F) == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

static bool is_control(unsigned op)
{
    return op >= 0x8;
}

/*
 * Checks a complete head against the rules and loads the frame. Returns 0,
 * or the close code of the violation.
 */
static uint16_t head_load(struct sl_ws_parser *p)
{
    const uint8_t *h = p->head;
    unsigned op = h[0] & 0x0F, n = 2;
    uint64_t len = h[1] & 0x7F;
    bool masked = h[1] & 0x80;

    bool rsv1 = h[0] & 0x40;
    if (h[0] & 0x30)
        return SL_WS_CLOSE_PROTOCOL; /* RSV2, RSV3: no extension defines them */
    if (rsv1 && (!p->rsv1_ok || op == SL_WS_OP_CONT || op >= SL_WS_OP_CLOSE))
        return SL_WS_CLOSE_PROTOCOL; /* RFC 7692 6: first frame of a data message only */
    if ((op > SL_WS_OP_BINARY && op < SL_WS_OP_CLOSE) || op > SL_WS_OP_PONG)
        return SL_WS_CLOSE_PROTOCOL;
    if (!masked && p->require_mask)
        return SL_WS_CLOSE_PROTOCOL;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        n = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        n = 10;
        if (len >> 63)
            return SL_WS_CLOSE_PROTOCOL;
    }
    p->fin = h[0] & 0x80;
    p->opcode = (uint8_t)op;
    if (is_control(op)) {
        if (!p->fin || len > SL_WS_CONTROL_MAX)
            return SL_WS_CLOSE_PROTOCOL;
    } else if (op == SL_WS_OP_CONT) {
        if (!p->msg_op)
            return SL_WS_CLOSE_PROTOCOL;
    } else {
        if (p->msg_op)
            return SL_WS_CLOSE_PROTOCOL;
        p->msg_op = (uint8_t)op;
        p->msg_z = rsv1;
        p->msg_started = false;
        p->msg_len = 0;
        sl_ws_utf8_init(&p->utf8);
    }
    if (!is_control(op)) {
        if (p->max_message && len > p->max_message - p->msg_len)
            return SL_WS_CLOSE_TOO_BIG;
        p->msg_len += len;
    }
    if (masked)
        memcpy(p->mask, h + n, 4);
    else
        memset(p->mask, 0, 4);
    p->mask_pos = 0;
    p->left = len;
    p->ctrl_len = 0;
    return 0;
}

/* XORs n bytes with the mask, starting at mask offset p->mask_pos. */
static void unmask(struct sl_ws_parser *p, uint8_t *b, size_t n)
{
    unsigned k = p->mask_pos;
    if (!(p->mask[0] | p->mask[1] | p->mask[2] | p->mask[3]))
        return;
    size_t i = 0;
    for (; i < n && (k & 3); i++, k++)
        b[i] ^= p->mask[k & 3];
    if (n - i >= 8) {
        uint64_t m;
        uint8_t m8[8];
        for (int j = 0; j < 8; j++)
            m8[j] = p->mask[j & 3];
        memcpy(&m, m8, 8);
        for (; i + 8 <= n; i += 8) {
            uint64_t v;
            memcpy(&v, b + i, 8);
            v ^= m;
            memcpy(b + i, &v, 8);
        }
    }
    for (; i < n; i++, k++)
        b[i] ^= p->mask[k & 3];
    p->mask_pos = (uint8_t)(k & 3);
}

/* Emits a run of payload (maybe empty) of the current data frame. */
static size_t data_event(struct sl_ws_parser *p, uint8_t *buf, size_t n, struct sl_ws_event *ev,
                         size_t used)
{
    unmask(p, buf, n);
    p->left -= n;
    bool last = p->left == 0 && p->fin;
    if (p->msg_op == SL_WS_OP_TEXT && !p->msg_z) {
        if (!sl_ws_utf8_feed(&p->utf8, buf, n) || (last && !sl_ws_utf8_complete(&p->utf8)))
            return fail(p, ev, SL_WS_CLOSE_BAD_DATA, used + n);
    }
    ev->type = SL_WS_EV_DATA;
    ev->opcode = p->msg_op;
    ev->first = !p->msg_started;
    ev->compressed = p->msg_z;
    ev->fin = last;
    ev->data = buf;
    ev->len = n;
    p->msg_started = true;
    if (p->left == 0) {
        p->state = ST_HEAD;
        p->head_len = 0;
        if (last)
            p->msg_op = 0;
    }
    return used + n;
}

/* A complete control frame, payload unmasked in p->ctrl. */
static size_t control_event(struct sl_ws_parser *p, struct sl_ws_event *ev, size_t used)
{
    ev->data = p->ctrl;
    ev->len = p->ctrl_len;
    p->state = ST_HEAD;
    p->head_len = 0;
    if (p->opcode == SL_WS_OP_PING) {
        ev->type = SL_WS_EV_PING;
        return used;
    }
    if (p->opcode == SL_WS_OP_PONG) {
        ev->type = SL_WS_EV_PONG;
        return used;
    }
    if (p->ctrl_len == 1)
        return fail(p, ev, SL_WS_CLOSE_PROTOCOL, used);
    ev->type = SL_WS_EV_CLOSE;
    ev->code = SL_WS_CLOSE_NO_STATUS;
    if (p->ctrl_len >= 2) {
        ev->code = (uint16_t)(p->ctrl[0] << 8 | p->ctrl[1]);
        if (!sl_ws_close_code_ok(ev->code))
            return fail(p, ev, SL_WS_CLOSE_PROTOCOL, used);
        if (!sl_ws_utf8_valid(p->ctrl + 2, p->ctrl_len - 2u))
            return fail(p, ev, SL_WS_CLOSE_BAD_DATA, used);
        ev->data = p->ctrl + 2;
        ev->len = p->ctrl_len - 2u;
    }
    p->state = ST_DONE;
    return used;
}

/* The event a finished parser repeats. */
static size_t done_event(struct sl_ws_parser *p, struct sl_ws_event *ev)
{
    if (p->opcode == SL_WS_OP_CLOSE) {
        ev->type = SL_WS_EV_CLOSE;
        ev->code =
            p->ctrl_len >= 2 ? (uint16_t)(p->ctrl[0] << 8 | p->ctrl[1]) : SL_WS_CLOSE_NO_STATUS;
        ev->data = p->ctrl_len >= 2 ? p->ctrl + 2 : p->ctrl;
        ev->len = p->ctrl_len >= 2 ? p->ctrl_len - 2u : 0;
    } else {
        ev->type = SL_WS_EV_ERROR;
        ev->code = (uint16_t)(p->mask[0] << 8 | p->mask[1]);
    }
    return 0;
}

size_t sl_ws_parse(struct sl_ws_parser *p, uint8_t *buf, size_t len, struct sl_ws_event *ev)
{
    size_t used = 0;
    memset(ev, 0, sizeof *ev);
    if (len == 0 && p->state != ST_DONE) {
        ev->type = SL_WS_EV_MORE;
        return 0; /* buf may be NULL: no arithmetic on it */
    }
    for (;;) {
        switch (p->state) {
        case ST_DONE:
            return used ? used : done_event(p, ev);
        case ST_HEAD: {
            unsigned need = p->head_len < 2 ? 2 : head_need(p->head);
            while (p->head_len < need && used < len) {
                p->head[p->head_len++] = buf[used++];
                if (p->head_len == 2)
                    need = head_need(p->head);
            }
            if (p->head_len < need) {
                ev->type = SL_WS_EV_MORE;
                return used;
            }
            uint16_t code = head_load(p);
            if (code)
                return fail(p, ev, code, used);
            p->state = is_control(p->opcode) ? ST_CONTROL : ST_PAYLOAD;
            if (p->state == ST_PAYLOAD && p->left == 0)
                return data_event(p, buf + used, 0, ev, used);
            break;
        }
        case ST_PAYLOAD: {
            size_t n = len - used;
            if (n == 0) {
                ev->type = SL_WS_EV_MORE;
                return used;
            }
            if (n > p->left)
                n = (size_t)p->left;
            return data_event(p, buf + used, n, ev, used);
        }
        case ST_CONTROL: {
            size_t n = len - used;
            if (n > p->left)
                n = (size_t)p->left;
            if (n) {
                memcpy(p->ctrl + p->ctrl_len, buf + used, n);
                unmask(p, p->ctrl + p->ctrl_len, n);
            }
            p->ctrl_len = (uint8_t)(p->ctrl_len + n);
            p->left -= n;
            used += n;
            if (p->left) {
                ev->type = SL_WS_EV_MORE;
                return used;
            }
            return control_event(p, ev, used);
        }
        }
    }
}
