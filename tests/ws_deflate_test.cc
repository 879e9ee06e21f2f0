// Unit tests for permessage-deflate (RFC 7692): the offer parser and the
// response (server/ws_deflate), the inflate bound, deflate/inflate round
// trips, and the frame parser's RSV1 rules when the extension is on. The
// Autobahn|Testsuite case groups they stand in for: 12 and 13 (compression).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "server/ws.h"
#include "server/ws_deflate.h"

namespace
{

// ---- negotiation ---------------------------------------------------------

// The response to the first acceptable offer of `v`, or "declined".
std::string Negotiate(const std::string &v)
{
    sl_ws_pmd m;
    // An exact-size heap copy, so ASan sees a read past the value.
    std::vector<char> buf(v.begin(), v.end());
    if (!sl_ws_pmd_offer(buf.data(), buf.size(), &m))
        return "declined";
    char out[SL_WS_PMD_RESPONSE_MAX];
    size_t n = sl_ws_pmd_response(&m, out);
    EXPECT_LE(n, (size_t)SL_WS_PMD_RESPONSE_MAX);
    return std::string(out, n);
}

const std::string kBase =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

TEST(WsDeflateNegotiation, AcceptsABareOfferWithNoContextTakeoverBothWays)
{
    EXPECT_EQ(Negotiate("permessage-deflate"), kBase);
    EXPECT_EQ(Negotiate("  Permessage-Deflate  "), kBase);
}

TEST(WsDeflateNegotiation, AcceptsWhatTheWebsocketsClientOffers)
{
    // python3-websockets' default offer.
    EXPECT_EQ(Negotiate("permessage-deflate; client_max_window_bits"), kBase);
    // Browsers'.
    EXPECT_EQ(Negotiate("permessage-deflate; client_max_window_bits=15"), kBase);
    EXPECT_EQ(Negotiate("permessage-deflate; server_no_context_takeover; "
                        "client_no_context_takeover"),
              kBase);
}

TEST(WsDeflateNegotiation, EchoesServerMaxWindowBitsWhenOffered)
{
    EXPECT_EQ(Negotiate("permessage-deflate; server_max_window_bits=10"),
              kBase + "; server_max_window_bits=10");
    EXPECT_EQ(Negotiate("permessage-deflate;server_max_window_bits=\"9\""),
              kBase + "; server_max_window_bits=9");
    EXPECT_EQ(Negotiate("permessage-deflate; server_max_window_bits=8"),
              kBase + "; server_max_window_bits=8");
    EXPECT_EQ(Negotiate("permessage-deflate; server_max_window_bits = 15 "),
              kBase + "; server_max_window_bits=15");
}

TEST(WsDeflateNegotiation, DeclinesBadOffers)
{
    for (const char *bad : {
             "permessage-deflate; server_max_window_bits",       // value required
             "permessage-deflate; server_max_window_bits=7",     // out of range
             "permessage-deflate; server_max_window_bits=16",    //
             "permessage-deflate; server_max_window_bits=010",   // leading zero
             "permessage-deflate; server_max_window_bits=08",    //
             "permessage-deflate; server_max_window_bits=1 0",   // not one token
             "permessage-deflate; client_max_window_bits=99",    //
             "permessage-deflate; client_max_window_bits=\"\"",  //
             "permessage-deflate; server_no_context_takeover=1", // flags take no value
             "permessage-deflate; client_no_context_takeover=\"x\"",
             "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
             "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
             "permessage-deflate; mux",                         // unknown parameter
             "permessage-deflate; ; client_max_window_bits",    // empty parameter
             "permessage-deflate; server_max_window_bits=\"10", // unterminated
             "permessage-deflate x",                            // not a list element
             "x-webkit-deflate-frame",                          // another extension
             "",
             ",,",
         })
        EXPECT_EQ(Negotiate(bad), "declined") << bad;
}

TEST(WsDeflateNegotiation, TakesTheFirstAcceptableOfferAndSkipsOthers)
{
    EXPECT_EQ(Negotiate("permessage-deflate; server_max_window_bits=7, "
                        "permessage-deflate; server_max_window_bits=12, "
                        "permessage-deflate"),
              kBase + "; server_max_window_bits=12");
    EXPECT_EQ(Negotiate("x-foo; a=\"b,c\"; d, permessage-deflate; bogus=1,"
                        " permessage-deflate; client_max_window_bits"),
              kBase);
    // A quoted comma does not end the element.
    EXPECT_EQ(Negotiate("permessage-deflate; server_max_window_bits=\"1,\", permessage-deflate"),
              kBase);
}

TEST(WsDeflateNegotiation, StopsWhereTheGrammarBreaks)
{
    EXPECT_EQ(Negotiate("x-foo; =1, permessage-deflate"), "declined");
    EXPECT_EQ(Negotiate("permessage-deflate; server_max_window_bits=9 ; , permessage-deflate"),
              "declined");
}

TEST(WsDeflateNegotiation, SurvivesEveryPrefixOfAnOffer)
{
    const std::string v = "x-a; p=\"q\\\"r\", permessage-deflate; server_max_window_bits=\"11\"; "
                          "client_max_window_bits; client_no_context_takeover";
    for (size_t n = 0; n <= v.size(); n++)
        Negotiate(v.substr(0, n)); // no crash, no read past the end (ASan)
    EXPECT_EQ(Negotiate(v), kBase + "; server_max_window_bits=11");
}

// ---- inflate -------------------------------------------------------------

// A raw deflate stream of `s`, as a peer sends it: sync-flushed, the
// 00 00 FF FF tail removed (RFC 7692 7.2.1).
std::string Compress(const std::string &s, int bits = 15, int level = 6)
{
    z_stream z{};
    EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string out(deflateBound(&z, s.size()) + 64, '\0');
    z.next_in = (Bytef *)s.data();
    z.avail_in = (uInt)s.size();
    z.next_out = (Bytef *)&out[0];
    z.avail_out = (uInt)out.size();
    EXPECT_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    out.resize(out.size() - z.avail_out);
    deflateEnd(&z);
    EXPECT_EQ(out.substr(out.size() - 4), std::string("\0\0\xff\xff", 4));
    out.resize(out.size() - 4);
    return out;
}

// Inflates `wire` fed in pieces of `chunk` bytes (0 = at once); returns the
// result code, the output in *out.
int Inflate(const std::string &wire, size_t max, std::string *out, size_t chunk = 0)
{
    sl_ws_inflater *z = sl_ws_inflater_new();
    EXPECT_NE(z, nullptr);
    sl_ws_buf b{};
    int rc = 0;
    if (chunk == 0)
        chunk = wire.size() ? wire.size() : 1;
    size_t off = 0;
    do {
        size_t n = std::min(chunk, wire.size() - off);
        std::vector<uint8_t> piece(wire.begin() + off, wire.begin() + off + n);
        off += n;
        rc = sl_ws_inflate(z, piece.data(), n, off == wire.size(), &b, max);
        if (max) {
            EXPECT_LE(b.len, max);
        }
    } while (rc == 0 && off < wire.size());
    out->assign((const char *)b.data, b.len);
    sl_ws_buf_release(&b);
    sl_ws_inflater_free(z);
    return rc;
}

TEST(WsDeflateInflate, RoundTripsWhateverTheSplit)
{
    std::string text;
    for (int i = 0; i < 2000; i++)
        text += "message " + std::to_string(i * 7919 % 1000) + "; ";
    std::string wire = Compress(text), out;
    ASSERT_LT(wire.size(), text.size() / 3);
    for (size_t chunk : {0, 1, 2, 3, 7, 100, 4096}) {
        EXPECT_EQ(Inflate(wire, 1 << 20, &out, chunk), 0) << chunk;
        EXPECT_EQ(out, text) << chunk;
    }
}

TEST(WsDeflateInflate, DecodesEverySenderWindow)
{
    std::string text(50000, 'a');
    for (size_t i = 0; i < text.size(); i += 97)
        text[i] = (char)('b' + i % 13);
    std::string out;
    for (int bits = 9; bits <= 15; bits++) {
        EXPECT_EQ(Inflate(Compress(text, bits), 0, &out), 0) << bits;
        EXPECT_EQ(out, text) << bits;
    }
}

TEST(WsDeflateInflate, AcceptsAMessageOfExactlyTheLimit)
{
    std::string text(100000, 'z'), out;
    EXPECT_EQ(Inflate(Compress(text), text.size(), &out), 0);
    EXPECT_EQ(out.size(), text.size());
    EXPECT_EQ(Inflate(Compress(text), text.size() - 1, &out), -EMSGSIZE);
}

TEST(WsDeflateInflate, StopsAZipBombAtTheLimit)
{
    // 64 MiB of zeros compress to ~64 KiB: the inflater must stop at the
    // limit, having written no more than it, whatever the split.
    std::string bomb = Compress(std::string(64u << 20, '\0'), 15, 9), out;
    ASSERT_LT(bomb.size(), 128u << 10);
    for (size_t chunk : {0, 1000, 65536}) {
        EXPECT_EQ(Inflate(bomb, 1 << 20, &out, chunk), -EMSGSIZE) << chunk;
        EXPECT_EQ(out.size(), (size_t)1 << 20);
    }
}

TEST(WsDeflateInflate, RejectsCorruptData)
{
    std::string out;
    // BTYPE 11 is reserved (RFC 1951 3.2.3).
    EXPECT_EQ(Inflate(std::string("\x07\x00", 2), 0, &out), -EBADMSG);
    // Data after a final block.
    std::string done = Compress("hello");
    done[0] |= 1; // BFINAL on the only block
    std::string trailing = done + std::string("\x00\x00\xff\xff", 4) + "junk";
    EXPECT_EQ(Inflate(done, 0, &out), 0);
    EXPECT_EQ(out, "hello");
    EXPECT_EQ(Inflate(trailing, 0, &out), -EBADMSG);
}

TEST(WsDeflateInflate, DecodesAnEmptyMessage)
{
    std::string out = "x";
    EXPECT_EQ(Inflate(Compress(""), 10, &out), 0);
    EXPECT_EQ(out, "");
    // An empty payload at all (a compressed frame with no bytes) is the
    // empty message too: only the tail is inflated.
    EXPECT_EQ(Inflate(std::string("\x00", 1), 10, &out), 0);
}

// ---- deflate -------------------------------------------------------------

TEST(WsDeflateDeflate, CompressesWithoutContextBetweenMessages)
{
    sl_ws_deflater *d = sl_ws_deflater_new();
    ASSERT_NE(d, nullptr);
    std::string msg(5000, 'q');
    for (size_t i = 0; i < msg.size(); i += 11)
        msg[i] = 'r';
    std::string first;
    for (int round = 0; round < 3; round++) {
        for (unsigned bits : {15u, 9u, 15u}) {
            const uint8_t *out;
            size_t len;
            ASSERT_EQ(sl_ws_deflate(d, bits, (const uint8_t *)msg.data(), msg.size(), &out, &len),
                      0);
            std::string wire((const char *)out, len), back;
            // Each message decodes on its own with a fresh inflater: no
            // context from the one before (server_no_context_takeover).
            EXPECT_EQ(Inflate(wire, 0, &back), 0);
            EXPECT_EQ(back, msg);
            EXPECT_LT(len, msg.size() / 10);
            if (bits == 15) {
                if (first.empty())
                    first = wire;
                EXPECT_EQ(wire, first) << "a message depends on the ones before";
            }
        }
    }
    sl_ws_deflater_trim(d);
    sl_ws_deflater_free(d);
    sl_ws_deflater_free(nullptr);
}

TEST(WsDeflateDeflate, RefusesWindowsZlibCannotKeepTo)
{
    sl_ws_deflater *d = sl_ws_deflater_new();
    const uint8_t *out;
    size_t len;
    EXPECT_EQ(sl_ws_deflate(d, 8, (const uint8_t *)"abc", 3, &out, &len), -EINVAL);
    EXPECT_EQ(sl_ws_deflate(d, 16, (const uint8_t *)"abc", 3, &out, &len), -EINVAL);
    sl_ws_deflater_free(d);
}

TEST(WsDeflateDeflate, FreesALargeScratchOnTrim)
{
    sl_ws_deflater *d = sl_ws_deflater_new();
    std::string big(1 << 20, 'x');
    const uint8_t *out;
    size_t len;
    ASSERT_EQ(sl_ws_deflate(d, 15, (const uint8_t *)big.data(), big.size(), &out, &len), 0);
    std::string back;
    EXPECT_EQ(Inflate(std::string((const char *)out, len), 0, &back), 0);
    EXPECT_EQ(back, big);
    sl_ws_deflater_trim(d); // freed (ASan/LSan: nothing leaks, nothing is reused)
    ASSERT_EQ(sl_ws_deflate(d, 15, (const uint8_t *)"hello hello hello", 17, &out, &len), 0);
    EXPECT_EQ(Inflate(std::string((const char *)out, len), 0, &back), 0);
    EXPECT_EQ(back, "hello hello hello");
    sl_ws_deflater_free(d);
}

// ---- the frame parser with the extension on --------------------------------

const uint8_t kMask[4] = {0x11, 0x22, 0x33, 0x44};

std::string Frame(uint8_t b0, const std::string &payload)
{
    std::string f(1, (char)b0);
    size_t n = payload.size();
    EXPECT_LT(n, 126u);
    f += (char)(0x80 | n);
    f.append((const char *)kMask, 4);
    for (size_t i = 0; i < n; i++)
        f += (char)(payload[i] ^ kMask[i & 3]);
    return f;
}

// "z:" (compressed) or "p:" (plain) per DATA event, the payload, and
// "error:<code>" at an error; joined by '|'.
std::string ParseRsv(const std::string &wire, bool rsv1_ok = true)
{
    sl_ws_parser p;
    sl_ws_parser_init(&p);
    p.rsv1_ok = rsv1_ok;
    std::vector<uint8_t> buf(wire.begin(), wire.end());
    std::string out;
    size_t pos = 0;
    while (pos < buf.size()) {
        sl_ws_event ev;
        pos += sl_ws_parse(&p, buf.data() + pos, buf.size() - pos, &ev);
        std::string s;
        if (ev.type == SL_WS_EV_DATA)
            s = std::string(ev.compressed ? "z:" : "p:") +
                std::string((const char *)ev.data, ev.len);
        else if (ev.type == SL_WS_EV_ERROR)
            s = "error:" + std::to_string(ev.code);
        else if (ev.type == SL_WS_EV_PING)
            s = "ping";
        else
            continue;
        out += (out.empty() ? "" : "|") + s;
        if (ev.type == SL_WS_EV_ERROR)
            break;
    }
    return out;
}

TEST(WsDeflateFraming, MarksAMessageCompressedByItsFirstFrame)
{
    EXPECT_EQ(ParseRsv(Frame(0xC1, "ab")), "z:ab");
    EXPECT_EQ(ParseRsv(Frame(0x41, "ab") + Frame(0x89, "") + Frame(0x80, "cd")), "z:ab|ping|z:cd");
    EXPECT_EQ(ParseRsv(Frame(0xC2, "ab") + Frame(0x82, "cd")), "z:ab|p:cd");
}

TEST(WsDeflateFraming, DoesNotValidateCompressedTextAsUtf8)
{
    EXPECT_EQ(ParseRsv(Frame(0xC1, "\xff\xfe")), "z:\xff\xfe");
    EXPECT_EQ(ParseRsv(Frame(0x81, "\xff\xfe")), "error:1007");
}

TEST(WsDeflateFraming, RejectsRsv1OnContinuationAndControlFrames)
{
    EXPECT_EQ(ParseRsv(Frame(0x41, "ab") + Frame(0xC0, "cd")), "z:ab|error:1002");
    EXPECT_EQ(ParseRsv(Frame(0x01, "ab") + Frame(0xC0, "cd")), "p:ab|error:1002");
    EXPECT_EQ(ParseRsv(Frame(0xC9, "")), "error:1002");
    EXPECT_EQ(ParseRsv(Frame(0xC8, "")), "error:1002");
}

TEST(WsDeflateFraming, StillRejectsRsv2AndRsv3)
{
    for (uint8_t rsv : {0x10, 0x20, 0x30, 0x50, 0x60, 0x70})
        EXPECT_EQ(ParseRsv(Frame(0x81 | rsv, "ab")), "error:1002") << (int)rsv;
}

TEST(WsDeflateFraming, RejectsRsv1WithoutTheExtension)
{
    EXPECT_EQ(ParseRsv(Frame(0xC1, "ab"), false), "error:1002");
}

} // namespace
