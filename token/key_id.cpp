#include "token/key_id.h"

#include "token/slot_id.h"

namespace ukey {

std::string KeyId::identity() const
{
    std::string id = "token";
    for (const std::string* part : {&backend, &manufacturer, &model, &serial}) {
        id += '\0';
        id += *part;
    }
    return id;
}

KeyId key_id(const std::string& backend, const CK_TOKEN_INFO& t)
{
    return KeyId{backend, trim_field(t.manufacturerID), trim_field(t.model), trim_field(t.serialNumber)};
}

} // namespace ukey
