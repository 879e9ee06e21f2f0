/*
 * ws_deflate: the permessage-deflate extension (RFC 7692) for WebSockets:
 * negotiation, and zlib (de)compression of whole messages.
 *
 * Memory is the point. The server always answers with
 * server_no_context_takeover and client_no_context_takeover (RFC 7692
 * 7.1.1.1 and 7.1.1.2 let a server add both to any offer it accepts), so no
 * LZ77 window has to outlive a message in either direction:
 *   - an inflater (zlib's state, ~7 KiB, and its window, up to 32 KiB) exists
 *     only while a compressed message is being received, and is freed at
 *     its end; a message that arrives whole in one read is inflated by one
 *     inflater per worker instead;
 *   - outgoing messages are compressed whole, at once, by one deflater per
 *     worker (sl_ws_deflater), reset between messages.
 * An idle WebSocket with compression negotiated thus holds no zlib memory at
 * all. The price: each message is compressed on its own, without the
 * previous ones as dictionary (chatty streams of similar small messages
 * compress less well than with context takeover).
 *
 * Nothing here is thread-safe; a worker owns its deflater, a connection its
 * inflater.
 */
#ifndef SL_SERVER_WS_DEFLATE_H
#define SL_SERVER_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- negotiation ---------------------------------------------------------- */

/* An accepted permessage-deflate offer. */
struct sl_ws_pmd {
    uint8_t server_bits;    /* our compressor's window (8..15); 8 = never compress:
                             * zlib's raw deflate cannot keep to a 256-byte window */
    bool server_bits_named; /* the offer named server_max_window_bits: echo it */
};

/*
 * Looks through one Sec-WebSocket-Extensions field value (RFC 6455 9.1:
 * extensions separated by commas, each with ";"-separated parameters, values
 * tokens or quoted strings) for the first permessage-deflate offer this
 * server can accept, and stores it in *out. An offer is declined (skipped)
 * when a parameter is unknown, repeated or has a bad value (window bits
 * other than a decimal 8..15 without leading zeros; a value on the
 * no_context_takeover flags). Other extensions are skipped. A field that
 * breaks the grammar is declined from the point where it breaks. Returns
 * true when an offer was accepted.
 */
bool sl_ws_pmd_offer(const char *v, size_t n, struct sl_ws_pmd *out);

/* Longest sl_ws_pmd_response text, without a NUL. */
#define SL_WS_PMD_RESPONSE_MAX 128

/* Writes the Sec-WebSocket-Extensions value answering *m into out (no NUL);
 * returns its length. */
size_t sl_ws_pmd_response(const struct sl_ws_pmd *m, char out[SL_WS_PMD_RESPONSE_MAX]);

/* ---- buffers --------------------------------------------------------------- */

/* A growable heap buffer (a message being assembled). */
struct sl_ws_buf {
    uint8_t *data; /* malloc'd; NULL when empty */
    size_t len, cap;
};

/* Makes room for `more` bytes past len, growing by doubling from 1 KiB, but
 * never to a capacity above `max` unless len + more needs it. Returns 0 or
 * -ENOMEM. */
int sl_ws_buf_reserve(struct sl_ws_buf *b, size_t more, size_t max);

/* Frees the bytes; b is empty after. */
void sl_ws_buf_release(struct sl_ws_buf *b);

/* ---- inflate (incoming messages) ---------------------------------------------- */

struct sl_ws_inflater;

/* A new inflater for one message (raw deflate, 32 KiB window: it decodes
 * any window the peer used). NULL when out of memory. */
struct sl_ws_inflater *sl_ws_inflater_new(void);

/* Frees z (NULL is a no-op). */
void sl_ws_inflater_free(struct sl_ws_inflater *z);

/* Makes z ready for a new message, whatever happened to it before (an
 * error included); zlib keeps its allocations. */
void sl_ws_inflater_reset(struct sl_ws_inflater *z);

/* How many inflaters exist in this process: the tests' evidence that an
 * idle WebSocket holds none. */
size_t sl_ws_inflaters_live(void);

/*
 * Inflates in[0..n), the next bytes of a compressed message, appending the
 * output to out; with `fin`, they are the message's last, and the
 * 00 00 FF FF tail the sender removed (RFC 7692 7.2.2) is fed too. Output
 * is produced incrementally and never lets out->len exceed max (0 = no
 * limit): a message that inflates past it stops there with -EMSGSIZE (close
 * 1009), however small it was compressed. Returns 0, -EMSGSIZE, -EBADMSG
 * (not a valid deflate stream, or data after its end: close 1007) or
 * -ENOMEM. After an error z must only be freed.
 */
int sl_ws_inflate(struct sl_ws_inflater *z, const uint8_t *in, size_t n, bool fin,
                  struct sl_ws_buf *out, size_t max);

/* ---- deflate (outgoing messages) ------------------------------------------------ */

/* Messages shorter than this are sent uncompressed (RFC 7692 6: any message
 * may be): deflate cannot win enough on them to pay for its work. */
#define SL_WS_DEFLATE_MIN 64

struct sl_ws_deflater;

/* A deflater (created lazily by the caller, one per worker). NULL when out
 * of memory. Its zlib state (~270 KiB at window 15) is allocated on first
 * use and kept. */
struct sl_ws_deflater *sl_ws_deflater_new(void);

/* Frees d (NULL is a no-op). */
void sl_ws_deflater_free(struct sl_ws_deflater *d);

/*
 * Compresses the whole message in[0..n) with a window of `bits` (9..15),
 * without context from earlier messages (server_no_context_takeover), as an
 * RFC 7692 payload (the final 00 00 FF FF removed). *out points into d's
 * scratch buffer, valid until the next call on d. Returns 0, or -ENOMEM.
 * The caller sends the message uncompressed when *out_len is not smaller
 * than n.
 */
int sl_ws_deflate(struct sl_ws_deflater *d, unsigned bits, const uint8_t *in, size_t n,
                  const uint8_t **out, size_t *out_len);

/* Frees d's scratch buffer when it grew past 64 KiB (a large message). */
void sl_ws_deflater_trim(struct sl_ws_deflater *d);

#ifdef __cplusplus
}
#endif

#endif
