// Shared pieces of the CLI: exit codes, output, failures, confirmation.
#include "cli.h"

#include "client/messages.h"
#include "tool_config.h"

#include <cstdio>
#include <iostream>
#include <unistd.h>

namespace ukey::cli {

Exit exit_for(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return ok;
    case CKR_PIN_INCORRECT:
        return wrong_pin;
    case CKR_PIN_LOCKED:
        return pin_locked;
    case CKR_PIN_EXPIRED:
        return pin_must_change;
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_TEMPLATE_INCONSISTENT:
        return bad_input;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID:
    case CKR_TOKEN_NOT_RECOGNIZED:
        return no_key;
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
        return not_found;
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return setup;
    case CKR_CANCEL:
    case CKR_FUNCTION_CANCELED:
        return cancelled;
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_GENERAL_ERROR:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_TOKEN_WRITE_PROTECTED:
        return key_error;
    default:
        return failure;
    }
}

void check(CK_RV rv, const std::string& doing)
{
    if (rv != CKR_OK)
        throw Failure(exit_for(rv), client::ck_error(rv, doing).message, rv);
}

std::optional<std::filesystem::path> Context::service_socket() const
{
    if (!module_path.empty() || secure_getenv("UKEY_MODULE"))
        return std::nullopt;
    auto cfg = load_tool_config(config_path());
    return cfg ? service_socket_for_me(*cfg) : std::nullopt;
}

const client::Module& Context::module()
{
    if (!module_) {
        const auto service = service_socket();
        auto m = service ? client::Module::connect_service(*service)
                         : client::Module::load(module_path.empty() ? client::default_module_path() : module_path);
        if (!m)
            throw Failure(setup, m.error().message, m.error().rv);
        module_ = std::move(*m);
    }
    return *module_;
}

std::string json_text(const nlohmann::json& doc, int indent)
{
    return escape::printable_json(doc.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace));
}

void Context::print(const nlohmann::json& doc, const std::function<void()>& text) const
{
    if (json)
        std::cout << json_text(doc) << std::endl;
    else
        text();
}

void Context::print_list(const nlohmann::json& doc, const char* field, const std::string& none,
                         std::string (*line)(const nlohmann::json&)) const
{
    print(doc, [&] {
        if (doc[field].empty())
            std::cout << none << "\n";
        for (const auto& j : doc[field])
            std::cout << line(j) << "\n";
    });
}

void Context::progress(const std::string& what) const
{
    if (json || quiet || !isatty(STDERR_FILENO))
        return;
    // A note may end its line; any other line break would be a value's.
    const bool ends_line = !what.empty() && what.back() == '\n';
    std::cerr << shown(std::string_view(what).substr(0, what.size() - ends_line)) << (ends_line ? "\n" : "")
              << std::flush;
}

Answer ask(const std::vector<std::string>& lines)
{
    FILE* tty = fopen("/dev/tty", "r+");
    if (!tty)
        return Answer::no_terminal;
    for (std::size_t i = 0; i < lines.size(); ++i)
        fprintf(tty, "%s%s", shown(lines[i]).c_str(), i + 1 < lines.size() ? "\n" : " [y/N] ");
    fflush(tty);
    char line[16] = {0};
    bool yes = fgets(line, sizeof line, tty) && (line[0] == 'y' || line[0] == 'Y');
    fclose(tty);
    return yes ? Answer::yes : Answer::no;
}

void confirm_deletion(bool yes, const std::string& heading, const nlohmann::json& items,
                      std::string (*line)(const nlohmann::json&), const std::string& question,
                      const std::string& refused)
{
    if (yes)
        return;
    std::vector<std::string> lines{heading};
    for (const auto& i : items)
        lines.push_back("  " + line(i));
    lines.push_back(question);
    if (!confirm(lines))
        throw Failure(cancelled, refused);
}

} // namespace ukey::cli
