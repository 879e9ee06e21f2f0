// Unit tests for server/ws: the WebSocket frame parser, the UTF-8 validator
// and the framing helpers. Grouped like the Autobahn|Testsuite case groups
// they stand in for (framing, pings/pongs, reserved bits, opcodes,
// fragmentation, UTF-8, close handling, limits).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "server/ws.h"

namespace
{

const uint8_t kMask[4] = {0x37, 0xfa, 0x21, 0x3d};

// A client frame: masked with kMask unless `masked` is false. `b0` is the
// first byte as is (FIN, RSV, opcode).
std::string Frame(uint8_t b0, const std::string &payload, bool masked = true)
{
    std::string f(1, (char)b0);
    uint64_t n = payload.size();
    uint8_t m = masked ? 0x80 : 0;
    if (n < 126) {
        f += (char)(m | n);
    } else if (n <= 0xFFFF) {
        f += (char)(m | 126);
        f += (char)(n >> 8);
        f += (char)n;
    } else {
        f += (char)(m | 127);
        for (int i = 7; i >= 0; i--)
            f += (char)(n >> (8 * i));
    }
    if (masked)
        f.append((const char *)kMask, 4);
    for (size_t i = 0; i < n; i++)
        f += (char)(payload[i] ^ (masked ? kMask[i & 3] : 0));
    return f;
}

std::string Text(const std::string &s, bool fin = true)
{
    return Frame((fin ? 0x80 : 0) | 0x1, s);
}
std::string Binary(const std::string &s, bool fin = true)
{
    return Frame((fin ? 0x80 : 0) | 0x2, s);
}
std::string Cont(const std::string &s, bool fin = true)
{
    return Frame((fin ? 0x80 : 0) | 0x0, s);
}
std::string Close(int code, const std::string &reason = "")
{
    std::string p;
    if (code >= 0) {
        p += (char)(code >> 8);
        p += (char)code;
    }
    return Frame(0x88, p + reason);
}

// Feeds `wire` to a fresh parser in pieces of `chunk` bytes (each piece an
// exact-size heap copy, so ASan sees a read past it) and returns a
// transcript: "text:<msg>" / "binary:<msg>" per message (fragments joined),
// "ping:<p>", "pong:<p>", "close:<code>:<reason>", "error:<code>", "more"
// when the input ended inside a frame or message, joined by '|'.
std::string Parse(const std::string &wire, size_t chunk = 0, uint64_t max_message = 0,
                  bool require_mask = true)
{
    sl_ws_parser p;
    sl_ws_parser_init(&p);
    p.max_message = max_message;
    p.require_mask = require_mask;
    if (chunk == 0)
        chunk = wire.size() ? wire.size() : 1;
    std::string out, msg;
    int msg_op = 0;
    for (size_t off = 0; off < wire.size(); off += chunk) {
        size_t n = std::min(chunk, wire.size() - off);
        std::vector<uint8_t> buf(wire.begin() + off, wire.begin() + off + n);
        size_t pos = 0;
        for (;;) {
            sl_ws_event ev;
            size_t used = sl_ws_parse(&p, buf.data() + pos, n - pos, &ev);
            pos += used;
            EXPECT_LE(pos, n);
            switch (ev.type) {
            case SL_WS_EV_MORE:
                EXPECT_EQ(pos, n);
                break;
            case SL_WS_EV_DATA:
                if (ev.first) {
                    EXPECT_EQ(msg_op, 0);
                    msg_op = ev.opcode;
                    msg.clear();
                }
                EXPECT_EQ(ev.opcode, msg_op);
                msg.append((const char *)ev.data, ev.len);
                if (ev.fin) {
                    out += (out.empty() ? "" : "|") +
                           std::string(msg_op == SL_WS_OP_TEXT ? "text:" : "binary:") + msg;
                    msg_op = 0;
                }
                continue;
            case SL_WS_EV_PING:
            case SL_WS_EV_PONG:
                out += (out.empty() ? "" : "|") +
                       std::string(ev.type == SL_WS_EV_PING ? "ping:" : "pong:") +
                       std::string((const char *)ev.data, ev.len);
                continue;
            case SL_WS_EV_CLOSE:
            case SL_WS_EV_ERROR: {
                std::string s = ev.type == SL_WS_EV_CLOSE
                                    ? "close:" + std::to_string(ev.code) + ":" +
                                          std::string((const char *)ev.data, ev.len)
                                    : "error:" + std::to_string(ev.code);
                // Sticky: the parser takes no more bytes and repeats itself.
                sl_ws_event again;
                uint8_t more[2] = {0x81, 0x80};
                EXPECT_EQ(sl_ws_parse(&p, more, 2, &again), 0u);
                EXPECT_EQ(again.type, ev.type);
                EXPECT_EQ(again.code, ev.code);
                return out + (out.empty() ? "" : "|") + s;
            }
            default:
                ADD_FAILURE() << "unknown event " << (int)ev.type;
                return out;
            }
            break;
        }
    }
    if (msg_op || p.state != 0 || p.head_len)
        out += (out.empty() ? "" : "|") + std::string("more");
    return out;
}

// Parse() agrees for every way of cutting the input in two.
void ExpectSplitInvariant(const std::string &wire, const std::string &want,
                          uint64_t max_message = 0)
{
    EXPECT_EQ(Parse(wire, 0, max_message), want);
    EXPECT_EQ(Parse(wire, 1, max_message), want);
    for (size_t cut = 1; cut < wire.size(); cut++) {
        // A prefix reports what the whole does up to where it stops.
        std::string got = Parse(wire.substr(0, cut), 0, max_message);
        if (got.size() >= 4 && got.compare(got.size() - 4, 4, "more") == 0)
            got.resize(got.size() - 4);
        EXPECT_EQ(want.compare(0, got.size(), got), 0) << "cut " << cut << ": " << got;
    }
    for (size_t chunk = 2; chunk < 20 && chunk < wire.size(); chunk++)
        EXPECT_EQ(Parse(wire, chunk, max_message), want) << "chunk " << chunk;
}

// ---- UTF-8 ---------------------------------------------------------------

bool Utf8(const std::string &s)
{
    return sl_ws_utf8_valid((const uint8_t *)s.data(), s.size());
}

TEST(WsUtf8, AcceptsValidText)
{
    EXPECT_TRUE(Utf8(""));
    EXPECT_TRUE(Utf8("Hello-µ@ßöäüàá-UTF-8!!"));
    EXPECT_TRUE(Utf8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")); // κόσμε
    EXPECT_TRUE(Utf8("\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf")); // boundaries
    EXPECT_TRUE(Utf8("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xed\x9f\xbf")); // U+10000, U+10FFFF, U+D7FF
    EXPECT_TRUE(Utf8("\xee\x80\x80\xef\xbf\xbe"));                     // U+E000, U+FFFE
    EXPECT_TRUE(Utf8(std::string("a\0b", 3)));
}

TEST(WsUtf8, RejectsOverlongsSurrogatesAndOutOfRange)
{
    EXPECT_FALSE(Utf8("\xc0\x80"));         // overlong NUL
    EXPECT_FALSE(Utf8("\xc1\xbf"));         // overlong
    EXPECT_FALSE(Utf8("\xe0\x9f\xbf"));     // overlong 3-byte
    EXPECT_FALSE(Utf8("\xf0\x8f\xbf\xbf")); // overlong 4-byte
    EXPECT_FALSE(Utf8("\xed\xa0\x80"));     // U+D800
    EXPECT_FALSE(Utf8("\xed\xbf\xbf"));     // U+DFFF
    EXPECT_FALSE(Utf8("\xf4\x90\x80\x80")); // U+110000
    EXPECT_FALSE(Utf8("\xf5\x80\x80\x80"));
    EXPECT_FALSE(Utf8("\xff"));
    EXPECT_FALSE(Utf8("\xfe"));
}

TEST(WsUtf8, RejectsStrayAndMissingContinuations)
{
    EXPECT_FALSE(Utf8("\x80"));
    EXPECT_FALSE(Utf8("a\xbf"));
    EXPECT_FALSE(Utf8("\xc2"));         // truncated at the end
    EXPECT_FALSE(Utf8("\xe1\x80"));     // truncated
    EXPECT_FALSE(Utf8("\xc2\x41"));     // ASCII where a continuation is due
    EXPECT_FALSE(Utf8("\xe1\x80\xc2")); // a lead where a continuation is due
}

TEST(WsUtf8, FailsAtTheFirstImpossibleByteWhateverTheSplit)
{
    // κόσμε then U+D800 (ED A0 80): "ED" alone could still be valid, "ED A0"
    // cannot, so the validator must fail on the chunk that holds A0.
    std::string s = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
                    "edited";
    size_t bad = 12; // index of A0
    for (size_t i = 0; i < s.size(); i++) {
        sl_ws_utf8 u;
        sl_ws_utf8_init(&u);
        bool ok = sl_ws_utf8_feed(&u, (const uint8_t *)s.data(), i);
        EXPECT_EQ(ok, i <= bad) << i;
    }
}

TEST(WsUtf8, IncrementalAgreesWithOneShotAtEverySplit)
{
    const std::string samples[] = {
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
        "\xf0\x9f\x98\x80 smile \xf4\x8f\xbf\xbf",
        "\xed\xa0\x80",
        "abc\xf0\x90\x80",
        "long ascii run of more than eight bytes \xc3\xa9 then more ascii text",
    };
    for (const std::string &s : samples) {
        bool whole = Utf8(s);
        for (size_t a = 0; a <= s.size(); a++) {
            for (size_t b = a; b <= s.size(); b++) {
                sl_ws_utf8 u;
                sl_ws_utf8_init(&u);
                const uint8_t *p = (const uint8_t *)s.data();
                bool ok = sl_ws_utf8_feed(&u, p, a) && sl_ws_utf8_feed(&u, p + a, b - a) &&
                          sl_ws_utf8_feed(&u, p + b, s.size() - b) && sl_ws_utf8_complete(&u);
                EXPECT_EQ(ok, whole) << a << "," << b;
            }
        }
    }
}

TEST(WsUtf8, StaysFailedOnceFailed)
{
    sl_ws_utf8 u;
    sl_ws_utf8_init(&u);
    EXPECT_FALSE(sl_ws_utf8_feed(&u, (const uint8_t *)"\xff", 1));
    EXPECT_FALSE(sl_ws_utf8_feed(&u, (const uint8_t *)"a", 1));
    EXPECT_FALSE(sl_ws_utf8_complete(&u));
}

// ---- framing -------------------------------------------------------------

TEST(WsFraming, DecodesTheRfcMaskedHello)
{
    // RFC 6455 section 5.7: a single-frame masked text message "Hello".
    const std::string wire = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    ExpectSplitInvariant(wire, "text:Hello");
}

TEST(WsFraming, DecodesEmptyMessages)
{
    EXPECT_EQ(Parse(Text("") + Binary("")), "text:|binary:");
}

TEST(WsFraming, Decodes16And64BitLengths)
{
    std::string mid(126, 'a'), big(65535, 'b'), huge(65536, 'c');
    EXPECT_EQ(Parse(Binary(mid)), "binary:" + mid);
    EXPECT_EQ(Parse(Binary(big)), "binary:" + big);
    EXPECT_EQ(Parse(Binary(huge)), "binary:" + huge);
    EXPECT_EQ(Parse(Binary(huge), 4093), "binary:" + huge);
}

TEST(WsFraming, UnmasksAcrossOddReadBoundaries)
{
    std::string s;
    for (int i = 0; i < 300; i++)
        s += (char)('a' + i % 26);
    for (size_t chunk : {1u, 3u, 5u, 7u, 13u, 64u, 127u})
        EXPECT_EQ(Parse(Text(s) + Text(s), chunk), "text:" + s + "|text:" + s) << chunk;
}

TEST(WsFraming, ReportsAnUnfinishedFrameAsMore)
{
    std::string f = Text("Hello");
    EXPECT_EQ(Parse(f.substr(0, 1)), "more");
    EXPECT_EQ(Parse(f.substr(0, 4)), "more");
    EXPECT_EQ(Parse(Text("He", false)), "more");
}

TEST(WsFraming, RequiresClientFramesMasked)
{
    EXPECT_EQ(Parse(Frame(0x81, "Hello", false)), "error:1002");
    EXPECT_EQ(Parse(Frame(0x89, "", false)), "error:1002");
    EXPECT_EQ(Parse(Frame(0x81, "Hello", false), 0, 0, false), "text:Hello");
}

TEST(WsFraming, RejectsA64BitLengthWithTheTopBitSet)
{
    std::string f = "\x82\xff\x80";
    f += std::string(7, '\0') + "\x01\x02\x03\x04";
    EXPECT_EQ(Parse(f), "error:1002");
}

TEST(WsFraming, AcceptsZeroMaskKey)
{
    std::string f = "\x81\x82";
    f += std::string(4, '\0') + "hi";
    EXPECT_EQ(Parse(f), "text:hi");
}

// ---- reserved bits -------------------------------------------------------

TEST(WsReservedBits, RejectsEveryRsvBitWithoutAnExtension)
{
    for (uint8_t rsv : {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70}) {
        EXPECT_EQ(Parse(Frame(0x81 | rsv, "Hello")), "error:1002") << (int)rsv;
        EXPECT_EQ(Parse(Text("ok") + Frame(0x89 | rsv, "")), "text:ok|error:1002");
    }
}

// ---- opcodes -------------------------------------------------------------

TEST(WsOpcodes, RejectsReservedOpcodes)
{
    for (uint8_t op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15})
        EXPECT_EQ(Parse(Text("a") + Frame(0x80 | op, "x") + Text("b")), "text:a|error:1002")
            << (int)op;
}

// ---- pings and pongs -----------------------------------------------------

TEST(WsPings, ReportsPingsAndPongsWithTheirPayload)
{
    ExpectSplitInvariant(Frame(0x89, "") + Frame(0x89, "hello") + Frame(0x8A, "pong"),
                         "ping:|ping:hello|pong:pong");
    std::string p125(125, 'x');
    EXPECT_EQ(Parse(Frame(0x89, p125), 7), "ping:" + p125);
}

TEST(WsPings, RejectsControlFramesOver125Bytes)
{
    EXPECT_EQ(Parse(Frame(0x89, std::string(126, 'x'))), "error:1002");
    EXPECT_EQ(Parse(Frame(0x8A, std::string(126, 'x'))), "error:1002");
    EXPECT_EQ(Parse(Frame(0x88, std::string(126, 'x'))), "error:1002");
}

TEST(WsPings, RejectsFragmentedControlFrames)
{
    EXPECT_EQ(Parse(Frame(0x09, "a") + Frame(0x80, "b")), "error:1002");
    EXPECT_EQ(Parse(Frame(0x08, "")), "error:1002");
}

// ---- fragmentation -------------------------------------------------------

TEST(WsFragmentation, JoinsFragmentsAcrossControlFrames)
{
    ExpectSplitInvariant(Text("frag", false) + Frame(0x89, "p1") + Cont("men", false) +
                             Frame(0x8A, "") + Cont("ted"),
                         "ping:p1|pong:|text:fragmented");
    EXPECT_EQ(Parse(Binary("a", false) + Cont("", false) + Cont("b")), "binary:ab");
    EXPECT_EQ(Parse(Text("", false) + Cont("", false) + Cont("")), "text:");
}

TEST(WsFragmentation, RejectsContinuationWithoutAMessage)
{
    EXPECT_EQ(Parse(Cont("x")), "error:1002");
    EXPECT_EQ(Parse(Text("a") + Cont("x")), "text:a|error:1002");
}

TEST(WsFragmentation, RejectsANewMessageInsideAFragmentedOne)
{
    EXPECT_EQ(Parse(Text("a", false) + Text("b")), "error:1002");
    EXPECT_EQ(Parse(Text("a", false) + Binary("b", false)), "error:1002");
}

TEST(WsFragmentation, MarksOnlyTheFirstRunOfAMessageFirst)
{
    sl_ws_parser p;
    sl_ws_parser_init(&p);
    std::string w = Text("ab", false) + Cont("cd");
    std::vector<uint8_t> buf(w.begin(), w.end());
    std::vector<std::pair<bool, bool>> seen; // first, fin
    size_t pos = 0;
    while (pos < buf.size()) {
        sl_ws_event ev;
        pos += sl_ws_parse(&p, buf.data() + pos, buf.size() - pos, &ev);
        if (ev.type == SL_WS_EV_DATA)
            seen.push_back({ev.first, ev.fin});
        EXPECT_EQ(sl_ws_parser_in_message(&p), pos < buf.size());
    }
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0], std::make_pair(true, false));
    EXPECT_EQ(seen[1], std::make_pair(false, true));
}

// ---- UTF-8 handling ------------------------------------------------------

TEST(WsUtf8Handling, AcceptsTextSplitInsideACharacterAcrossFragments)
{
    // κόσμε with each fragment boundary inside a multi-byte character.
    std::string s = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    for (size_t cut = 1; cut < s.size(); cut++)
        EXPECT_EQ(Parse(Text(s.substr(0, cut), false) + Cont(s.substr(cut))), "text:" + s) << cut;
}

TEST(WsUtf8Handling, RejectsInvalidTextAtTheFirstBadFrame)
{
    EXPECT_EQ(Parse(Text("\xce\xba\xed\xa0\x80")), "error:1007");
    // The bad byte is in the first fragment: no need to wait for the rest.
    EXPECT_EQ(Parse(Text("ok\xff", false)), "error:1007");
    // A message ending mid-character.
    EXPECT_EQ(Parse(Text("ok\xce", false) + Cont("")), "error:1007");
    EXPECT_EQ(Parse(Text("\xce")), "error:1007");
    // Binary messages are not validated.
    EXPECT_EQ(Parse(Binary("\xff\xfe")), "binary:\xff\xfe");
}

TEST(WsUtf8Handling, RejectsInvalidTextWhateverTheReadSplit)
{
    ExpectSplitInvariant(Text("ok") + Text("\xce\xba\xed\xa0\x80"
                                           "edited"),
                         "text:ok|error:1007");
}

// ---- close handling ------------------------------------------------------

TEST(WsClose, ReportsCodeAndReason)
{
    ExpectSplitInvariant(Close(1000, "bye"), "close:1000:bye");
    EXPECT_EQ(Parse(Close(-1)), "close:1005:");
    EXPECT_EQ(Parse(Close(4000)), "close:4000:");
    EXPECT_EQ(Parse(Close(1001, "\xce\xba")), "close:1001:\xce\xba");
}

TEST(WsClose, RejectsAOneBytePayload)
{
    EXPECT_EQ(Parse(Frame(0x88, "\x03")), "error:1002");
}

TEST(WsClose, RejectsCodesThatMayNotBeSent)
{
    for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
        EXPECT_EQ(Parse(Close(code)), "error:1002") << code;
    for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                     3999, 4000, 4999})
        EXPECT_EQ(Parse(Close(code)), "close:" + std::to_string(code) + ":") << code;
}

TEST(WsClose, RejectsAReasonThatIsNotUtf8)
{
    EXPECT_EQ(Parse(Close(1000, "\xce\xba\xed\xa0\x80")), "error:1007");
}

TEST(WsClose, TakesNothingAfterTheClose)
{
    EXPECT_EQ(Parse(Close(1000) + Text("late")), "close:1000:");
}

TEST(WsClose, MayArriveInsideAFragmentedMessage)
{
    EXPECT_EQ(Parse(Text("a", false) + Close(1000)), "close:1000:");
}

// ---- limits --------------------------------------------------------------

TEST(WsLimits, AcceptsAMessageOfExactlyTheLimit)
{
    EXPECT_EQ(Parse(Binary(std::string(100, 'x')), 0, 100), "binary:" + std::string(100, 'x'));
    EXPECT_EQ(Parse(Text(std::string(60, 'x'), false) + Cont(std::string(40, 'y')), 0, 100),
              "text:" + std::string(60, 'x') + std::string(40, 'y'));
}

TEST(WsLimits, RefusesALongerMessageFromItsHead)
{
    std::string f = Binary(std::string(101, 'x'));
    // The frame head alone is enough to refuse it.
    EXPECT_EQ(Parse(f.substr(0, 6), 0, 100), "error:1009");
    EXPECT_EQ(Parse(Text(std::string(60, 'x'), false) + Cont(std::string(41, 'y')), 0, 100),
              "error:1009");
    // A huge announced length is refused without reading anything more.
    std::string head = "\x82\xff";
    head += std::string("\x00\x00\x00\x01\x00\x00\x00\x00", 8) + "abcd";
    EXPECT_EQ(Parse(head, 0, 1 << 20), "error:1009");
}

TEST(WsLimits, ControlFramesDoNotCountTowardTheMessage)
{
    EXPECT_EQ(Parse(Text(std::string(60, 'x'), false) + Frame(0x89, std::string(100, 'p')) +
                        Cont(std::string(40, 'y')),
                    0, 100),
              "ping:" + std::string(100, 'p') + "|text:" + std::string(60, 'x') +
                  std::string(40, 'y'));
}

// ---- helpers -------------------------------------------------------------

TEST(WsHelpers, FormatsServerFrameHeads)
{
    uint8_t h[10];
    ASSERT_EQ(sl_ws_frame_head(h, SL_WS_OP_TEXT, true, 5), 2u);
    EXPECT_EQ(h[0], 0x81);
    EXPECT_EQ(h[1], 5);
    ASSERT_EQ(sl_ws_frame_head(h, SL_WS_OP_BINARY, false, 126), 4u);
    EXPECT_EQ(h[0], 0x02);
    EXPECT_EQ(h[1], 126);
    EXPECT_EQ(h[2], 0);
    EXPECT_EQ(h[3], 126);
    ASSERT_EQ(sl_ws_frame_head(h, SL_WS_OP_BINARY, true, 65536), 10u);
    EXPECT_EQ(h[1], 127);
    EXPECT_EQ(memcmp(h + 2, "\0\0\0\0\0\x01\0\0", 8), 0);
    // What the server writes, an unmasking parser reads back.
    std::string payload(70000, 'z');
    size_t n = sl_ws_frame_head(h, SL_WS_OP_BINARY, true, payload.size());
    EXPECT_EQ(Parse(std::string((char *)h, n) + payload, 1000, 0, false), "binary:" + payload);
}

TEST(WsHelpers, ValidatesSecWebSocketKey)
{
    EXPECT_TRUE(sl_ws_key_ok("dGhlIHNhbXBsZSBub25jZQ==", 24)); // RFC 6455 1.3
    EXPECT_TRUE(sl_ws_key_ok("AAAAAAAAAAAAAAAAAAAAAA==", 24));
    EXPECT_TRUE(sl_ws_key_ok("/+/+/+/+/+/+/+/+/+/+/w==", 24));
    EXPECT_FALSE(sl_ws_key_ok("dGhlIHNhbXBsZSBub25jZQ=", 23));
    EXPECT_FALSE(sl_ws_key_ok("dGhlIHNhbXBsZSBub25jZQ===", 25));
    EXPECT_FALSE(sl_ws_key_ok("dGhlIHNhbXBsZSBub25jZR==", 24)); // not canonical: 17 bits
    EXPECT_FALSE(sl_ws_key_ok("dGhlIHNhbXBsZSBub25j*Q==", 24));
    EXPECT_FALSE(sl_ws_key_ok("dGhlIHNhbXBsZSBub25jZQAA", 24));
    EXPECT_FALSE(sl_ws_key_ok("", 0));
}

TEST(WsHelpers, KnowsWhichCloseCodesMayBeSent)
{
    EXPECT_TRUE(sl_ws_close_code_ok(1000));
    EXPECT_TRUE(sl_ws_close_code_ok(1011));
    EXPECT_TRUE(sl_ws_close_code_ok(4999));
    EXPECT_FALSE(sl_ws_close_code_ok(1005));
    EXPECT_FALSE(sl_ws_close_code_ok(1006));
    EXPECT_FALSE(sl_ws_close_code_ok(1015));
    EXPECT_FALSE(sl_ws_close_code_ok(1004));
}

} // namespace
