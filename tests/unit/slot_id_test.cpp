#include "token/slot_id.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

namespace {
CK_TOKEN_INFO token(const char* serial)
{
    CK_TOKEN_INFO t;
    std::memset(&t, ' ', sizeof t);
    std::memcpy(t.manufacturerID, "SoftHSM project", 15);
    std::memcpy(t.model, "SoftHSM v2", 10);
    std::memcpy(t.serialNumber, serial, std::strlen(serial));
    return t;
}
} // namespace

TEST(SlotId, TrimsBlankPadding)
{
    CK_UTF8CHAR f[8] = {'a', 'b', ' ', ' ', ' ', ' ', ' ', ' '};
    EXPECT_EQ(ukey::trim_field(f), "ab");
}

TEST(SlotId, DependsOnBackendAndTokenIdentityOnly)
{
    auto a = ukey::slot_id_for(ukey::token_identity("softhsm", token("0001")));
    EXPECT_EQ(a, ukey::slot_id_for(ukey::token_identity("softhsm", token("0001"))));
    EXPECT_NE(a, ukey::slot_id_for(ukey::token_identity("softhsm", token("0002"))));
    EXPECT_NE(a, ukey::slot_id_for(ukey::token_identity("other", token("0001"))));
    // The label is not part of the identity: relabelling keeps the ID.
    CK_TOKEN_INFO t = token("0001");
    std::memcpy(t.label, "renamed", 7);
    EXPECT_EQ(a, ukey::slot_id_for(ukey::token_identity("softhsm", t)));
}

TEST(SlotId, Fits31BitsAndIsNeverZero)
{
    std::set<CK_SLOT_ID> ids;
    for (int i = 0; i < 10000; ++i) {
        CK_SLOT_ID id = ukey::slot_id_for(ukey::token_identity("b", token(std::to_string(i).c_str())));
        EXPECT_GT(id, 0u);
        EXPECT_LE(id, 0x7fffffffu);
        ids.insert(id);
    }
    EXPECT_EQ(ids.size(), 10000u);
}

TEST(SlotId, FieldBoundariesMatter)
{
    // "ab"+"c" must not name the same Key as "a"+"bc".
    EXPECT_NE(ukey::slot_id_for(ukey::token_identity("ab", token("c"))),
              ukey::slot_id_for(ukey::token_identity("a", token("bc"))));
}
