// Timer wheel: ordering, cancel, re-arm, far-future timers, many timers.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "server/timer.h"

namespace
{

struct Probe {
    sl_timer t;
    int id = 0;
    uint64_t due = 0;
    int fired = 0;
    uint64_t fired_at = 0;
};

std::vector<int> *g_order;
uint64_t g_now;

void on_fire(sl_timer *t)
{
    Probe *p = sl_container_of(t, Probe, t);
    p->fired++;
    p->fired_at = g_now;
    if (g_order)
        g_order->push_back(p->id);
}

class Wheel : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        g_now = 1000;
        g_order = &order;
        sl_timer_wheel_init(&w, g_now, 8);
    }
    void TearDown() override
    {
        g_order = nullptr;
    }
    void Arm(Probe &p, int id, uint64_t due)
    {
        sl_timer_init(&p.t, on_fire);
        p.id = id;
        p.due = due;
        sl_timer_arm(&w, &p.t, due);
    }
    /* Advances in small steps, like a poll loop would. */
    void AdvanceTo(uint64_t t, uint64_t step = 3)
    {
        while (g_now < t) {
            g_now = std::min(t, g_now + step);
            sl_timer_advance(&w, g_now);
        }
    }
    sl_timer_wheel w;
    std::vector<int> order;
};

TEST_F(Wheel, FiresTimersInDueOrder)
{
    Probe p[5];
    uint64_t dues[5] = {1300, 1040, 1200, 1100, 1017};
    for (int i = 0; i < 5; i++)
        Arm(p[i], i, dues[i]);
    EXPECT_EQ(w.count, 5u);
    AdvanceTo(1400);
    EXPECT_EQ(order, (std::vector<int>{4, 1, 3, 2, 0}));
    EXPECT_EQ(w.count, 0u);
}

TEST_F(Wheel, NeverFiresEarlyAndAtMostOneTickLate)
{
    Probe p;
    Arm(p, 1, 1101);
    AdvanceTo(1100, 1);
    EXPECT_EQ(p.fired, 0);
    AdvanceTo(1120, 1);
    EXPECT_EQ(p.fired, 1);
    EXPECT_GE(p.fired_at, 1101u);
    EXPECT_LE(p.fired_at, 1101u + 8);
}

TEST_F(Wheel, CancelledTimerDoesNotFire)
{
    Probe a, b;
    Arm(a, 1, 1050);
    Arm(b, 2, 1050);
    sl_timer_cancel(&w, &a.t);
    EXPECT_FALSE(sl_timer_armed(&a.t));
    sl_timer_cancel(&w, &a.t); /* twice is a no-op */
    AdvanceTo(1200);
    EXPECT_EQ(a.fired, 0);
    EXPECT_EQ(b.fired, 1);
}

TEST_F(Wheel, RearmingMovesTheTimerInsteadOfAddingOne)
{
    Probe p;
    Arm(p, 1, 1050);
    sl_timer_arm(&w, &p.t, 1500);
    EXPECT_EQ(w.count, 1u);
    AdvanceTo(1400);
    EXPECT_EQ(p.fired, 0);
    AdvanceTo(1600);
    EXPECT_EQ(p.fired, 1);
}

TEST_F(Wheel, DueTimeInThePastFiresOnTheNextTick)
{
    Probe p;
    Arm(p, 1, 10);
    EXPECT_EQ(sl_timer_advance(&w, g_now), 0u);
    AdvanceTo(g_now + 8);
    EXPECT_EQ(p.fired, 1);
}

TEST_F(Wheel, FarFutureTimerWaitsForItsRound)
{
    /* 1024 slots of 8 ms: 8192 ms per revolution; this is 5 turns away. */
    Probe p;
    Arm(p, 1, 1000 + 5 * 8192 + 77);
    AdvanceTo(1000 + 5 * 8192 + 76, 50);
    EXPECT_EQ(p.fired, 0);
    AdvanceTo(1000 + 5 * 8192 + 100, 1);
    EXPECT_EQ(p.fired, 1);
}

TEST_F(Wheel, OneBigJumpFiresEverythingOverdue)
{
    Probe p[3];
    Arm(p[0], 0, 1100);
    Arm(p[1], 1, 1000 + 3 * 8192);
    Arm(p[2], 2, 1000 + 50 * 8192);
    g_now = 1000 + 10 * 8192;
    EXPECT_EQ(sl_timer_advance(&w, g_now), 2u);
    EXPECT_EQ(p[0].fired + p[1].fired, 2);
    EXPECT_EQ(p[2].fired, 0);
    EXPECT_EQ(w.count, 1u);
}

struct Periodic {
    sl_timer t;
    sl_timer_wheel *w;
    int runs = 0;
};

void periodic_fire(sl_timer *t)
{
    Periodic *p = sl_container_of(t, Periodic, t);
    if (++p->runs < 5)
        sl_timer_arm(p->w, t, g_now + 100);
}

TEST_F(Wheel, CallbackMayRearmItself)
{
    Periodic p;
    p.w = &w;
    sl_timer_init(&p.t, periodic_fire);
    sl_timer_arm(&w, &p.t, g_now + 100);
    AdvanceTo(3000);
    EXPECT_EQ(p.runs, 5);
    EXPECT_FALSE(sl_timer_armed(&p.t));
}

struct Rival {
    sl_timer t;
    sl_timer_wheel *w;
    Rival *other;
    int fired = 0;
};

void rival_fire(sl_timer *t)
{
    Rival *r = sl_container_of(t, Rival, t);
    r->fired++;
    sl_timer_cancel(r->w, &r->other->t);
}

TEST_F(Wheel, CallbackMayCancelATimerDueOnTheSameTick)
{
    /* Both due on the same tick, each cancels the other when it fires:
     * exactly one must fire, whatever the order within the slot. */
    Rival a, b;
    a.w = b.w = &w;
    a.other = &b;
    b.other = &a;
    sl_timer_init(&a.t, rival_fire);
    sl_timer_init(&b.t, rival_fire);
    sl_timer_arm(&w, &a.t, 1050);
    sl_timer_arm(&w, &b.t, 1050);
    AdvanceTo(1100);
    EXPECT_EQ(a.fired + b.fired, 1);
    EXPECT_EQ(w.count, 0u);
}

TEST_F(Wheel, NextMsPointsAtTheEarliestSlot)
{
    EXPECT_EQ(sl_timer_next_ms(&w, g_now), -1);
    Probe a, b;
    Arm(a, 1, 1500);
    Arm(b, 2, 1200);
    int64_t next = sl_timer_next_ms(&w, g_now);
    EXPECT_GE(next, 200);
    EXPECT_LE(next, 208);
    sl_timer_cancel(&w, &b.t);
    next = sl_timer_next_ms(&w, g_now);
    EXPECT_GE(next, 500);
    EXPECT_LE(next, 508);
    EXPECT_EQ(sl_timer_next_ms(&w, 2000), 0);
}

TEST_F(Wheel, NextMsWrapsAroundTheWheel)
{
    Probe p;
    AdvanceTo(1000 + 8192 - 80, 500); /* current slot near the end */
    Arm(p, 1, g_now + 300);           /* lands past slot 0 */
    int64_t next = sl_timer_next_ms(&w, g_now);
    EXPECT_GE(next, 300);
    EXPECT_LE(next, 308);
}

TEST_F(Wheel, ManyTimersEachFireOnceAndOnTime)
{
    g_order = nullptr;
    const int n = 20000;
    std::vector<Probe> p(n);
    std::mt19937 rng(42);
    for (int i = 0; i < n; i++)
        Arm(p[i], i, g_now + rng() % 60000);
    /* Cancel every tenth. */
    for (int i = 0; i < n; i += 10)
        sl_timer_cancel(&w, &p[i].t);
    AdvanceTo(1000 + 61000, 7);
    for (int i = 0; i < n; i++) {
        if (i % 10 == 0) {
            ASSERT_EQ(p[i].fired, 0) << i;
            continue;
        }
        ASSERT_EQ(p[i].fired, 1) << i;
        ASSERT_GE(p[i].fired_at, p[i].due) << i;
        ASSERT_LE(p[i].fired_at, p[i].due + 8 + 7) << i;
    }
    EXPECT_EQ(w.count, 0u);
}

} // namespace
