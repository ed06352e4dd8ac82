#include "token/handles.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

using ukey::ObjectHandles;
using ukey::SessionRoute;
using ukey::SessionTable;

TEST(ObjectHandles, SameBackendHandleDifferentBackendsNeverCollide)
{
    ObjectHandles h(nullptr);
    std::set<CK_OBJECT_HANDLE> seen;
    for (unsigned b = 0; b < 16; ++b)
        for (CK_OBJECT_HANDLE bh : {1ul, 2ul, 77ul, 0xffffffful})
            EXPECT_TRUE(seen.insert(h.to_app(b, bh)).second);
}

TEST(ObjectHandles, RoundTripAndWrongBackend)
{
    ObjectHandles h(nullptr);
    CK_OBJECT_HANDLE app = h.to_app(3, 42);
    EXPECT_EQ(h.to_backend(3, app), std::optional<CK_OBJECT_HANDLE>(42));
    EXPECT_FALSE(h.to_backend(2, app));
    EXPECT_FALSE(h.to_backend(3, CK_INVALID_HANDLE));
    EXPECT_EQ(h.to_app(3, CK_INVALID_HANDLE), CK_INVALID_HANDLE);
}

TEST(ObjectHandles, HugeBackendHandlesGoThroughTheTable)
{
    ObjectHandles h(nullptr);
    const CK_OBJECT_HANDLE huge = ~CK_OBJECT_HANDLE(0) - 5;
    CK_OBJECT_HANDLE a = h.to_app(1, huge);
    EXPECT_EQ(h.to_app(1, huge), a) << "the same backend handle maps to the same application handle";
    EXPECT_NE(h.to_app(2, huge), a);
    EXPECT_EQ(h.to_backend(1, a), std::optional<CK_OBJECT_HANDLE>(huge));
    EXPECT_FALSE(h.to_backend(2, a));
    EXPECT_FALSE(h.to_backend(1, a + (CK_OBJECT_HANDLE(1) << ObjectHandles::tag_bits)))
        << "an unknown big handle is invalid";
}

TEST(ObjectHandles, SlotTagsKeepTokensOfOneBackendApart)
{
    ObjectHandles h(nullptr);
    const unsigned key_a = ObjectHandles::tag(2, 1), key_b = ObjectHandles::tag(2, 2);
    CK_OBJECT_HANDLE app = h.to_app(key_a, 7);
    EXPECT_EQ(h.to_backend(key_a, app), std::optional<CK_OBJECT_HANDLE>(7));
    EXPECT_FALSE(h.to_backend(key_b, app)) << "same backend, other Key";
    EXPECT_FALSE(h.to_backend(ObjectHandles::tag(3, 1), app)) << "other backend";
}

TEST(SessionTable, InsertFindEraseBySlot)
{
    SessionTable t(nullptr);
    auto* b1 = reinterpret_cast<ukey::Backend*>(0x1000);
    auto* b2 = reinterpret_cast<ukey::Backend*>(0x2000);
    CK_SESSION_HANDLE h1 = t.reserve(), h2 = t.reserve(), h3 = t.reserve();
    EXPECT_NE(h1, CK_INVALID_HANDLE);
    t.insert(h1, SessionRoute{b1, 5, 100, 1}, nullptr);
    t.insert(h2, SessionRoute{b1, 6, 100, 1}, nullptr);
    t.insert(h3, SessionRoute{b2, 5, 200, 1}, nullptr);
    SessionRoute r;
    ASSERT_TRUE(t.find(h3, r));
    EXPECT_EQ(r.backend, b2);
    EXPECT_EQ(t.erase_slot(b1, 1).size(), 2u);
    EXPECT_FALSE(t.find(h1, r));
    EXPECT_TRUE(t.find(h3, r)) << "same backend slot number on another backend is another slot";
    EXPECT_TRUE(t.erase(h3));
    EXPECT_FALSE(t.erase(h3));
}

TEST(SessionTable, ConcurrentUse)
{
    SessionTable t(nullptr);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&] {
            for (int j = 0; j < 2000; ++j) {
                CK_SESSION_HANDLE h = t.reserve();
                t.insert(h, SessionRoute{nullptr, h, 1, 1}, nullptr);
                SessionRoute r;
                ASSERT_TRUE(t.find(h, r));
                ASSERT_EQ(r.handle, h);
                ASSERT_TRUE(t.erase(h));
            }
        });
    for (auto& th : threads)
        th.join();
    EXPECT_TRUE(t.erase_all().empty());
}
