// ukey backend list|add|remove|hide|unhide: the [[backend]] entries of ukey.conf,
// and each backend module's own registration with p11-kit. A driver's
// package registers its module with p11-kit; programs using p11-kit-proxy
// (Firefox, Chromium, GnuTLS set up for it) then see every Key twice, once
// through ukey and once straight from the driver, past ukey's PIN lockout
// (P11). `add` and `hide` hide that registration, `remove` and `unhide` bring
// it back.
#include "cli.h"
#include "nss_dbs.h"

#include "client/config_edit.h"
#include "client/p11kit_config.h"
#include "client/public_file.h"
#include "token/config.h"
#include "token/file_trust.h"
#include "token/files.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>

namespace ukey::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct BackendOptions {
    std::string name, module, pin_counter = "ukey";
    bool optional = false, fixed = false, no_fixes = false, keep_p11kit = false;
};

// The config's text, or "" when there is none yet (`add` makes it).
std::string config_text(const fs::path& path, bool must_exist)
{
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        if (must_exist)
            throw Failure(setup, "there is no config file " + shown(path.string()) + ": `ukey backend add` makes one");
        return {};
    }
    auto text = read_config_text(path);
    if (!text)
        throw Failure(setup, text.error().message);
    return *text;
}

void write_config(const fs::path& path, const std::string& text)
{
    auto cannot = [&](const std::string& why) {
        return Failure(setup, "cannot write the config " + shown(path.string()) + ": " + shown(why) +
                                  (geteuid() != 0 ? " (run as root, or point UKEY_CONF at a config of your own)" : ""));
    };
    // A first config (and /etc/ukey) is 0644 (0755) whatever the umask: the
    // module reads it in every user's applications. An existing one keeps
    // its mode.
    struct stat st {};
    const mode_t mode = stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    if (auto w = client::write_public_file(path.string(), text, mode); !w)
        throw cannot(w.error().message);
}

std::vector<BackendConfig> configured(const fs::path& path, const std::string& text)
{
    if (text.empty())
        return {};
    auto cfg = parse_config(text, path);
    if (!cfg)
        throw Failure(setup, cfg.error().message);
    return cfg->backends;
}

// The registrations of `b`'s library with p11-kit.
std::vector<client::P11KitRegistration> registrations_of(const std::vector<client::P11KitRegistration>& all,
                                                         const std::string& module)
{
    std::vector<client::P11KitRegistration> out;
    const std::string lib = real_file(module);
    for (const auto& r : all)
        if (!lib.empty() && r.library == lib)
            out.push_back(r);
    return out;
}

json registration_json(const client::P11KitRegistration& r)
{
    return {{"name", r.name},
            {"file", r.file.string()},
            {"module", r.module},
            {"seen_by_applications", r.enabled},
            {"hidden_by_ukey", r.hidden_by_ukey}};
}

std::string registration_line(const json& r)
{
    const std::string where = "registered with p11-kit as '" + shown(r["name"].get<std::string>()) + "' (" +
                              shown(r["file"].get<std::string>()) + ")";
    if (r["hidden_by_ukey"].get<bool>())
        return where + ": hidden by ukey";
    if (!r["seen_by_applications"].get<bool>())
        return where + ": not loaded by p11-kit-proxy";
    return where + ": programs using p11-kit-proxy see its Keys a second time, without ukey's PIN lockout "
                   "(`ukey backend hide` hides it)";
}

// Hides every registration of `module` that applications still see.
json hide_all(const client::P11KitDirs& dirs, const std::string& module, const std::string& backend)
{
    json hidden = json::array();
    for (const auto& r : registrations_of(client::p11kit_registrations(dirs), module)) {
        if (r.hidden_by_ukey || !r.enabled)
            continue;
        if (auto h = client::hide_registration(dirs, r, backend); !h)
            throw Failure(setup, "cannot hide the module's registration with p11-kit: " + shown(h.error().message) +
                                     (geteuid() != 0 ? " (as root, p11-kit's own folder /etc/pkcs11/modules)" : ""));
        hidden.push_back({{"name", r.name}, {"file", (dirs.write / (r.name + ".module")).string()}});
    }
    return hidden;
}

void list(Context& ctx)
{
    const fs::path path = config_path();
    const std::string text = config_text(path, true);
    const auto all = client::p11kit_registrations(client::p11kit_dirs());
    json doc = {{"config", path.string()}, {"backends", json::array()}};
    for (const auto& b : configured(path, text)) {
        json regs = json::array();
        for (const auto& r : registrations_of(all, b.module))
            regs.push_back(registration_json(r));
        std::error_code ec;
        doc["backends"].push_back({{"name", b.name},
                                   {"module", b.module},
                                   {"module_exists", fs::is_regular_file(b.module, ec)},
                                   {"pin_counter", b.pin_counter == PinCounter::token ? "token" : "ukey"},
                                   {"optional", b.optional},
                                   {"removable", b.removable},
                                   {"fixes", b.fixes},
                                   {"p11kit", regs}});
    }
    ctx.print(doc, [&] {
        for (const auto& b : doc["backends"]) {
            std::cout << shown(b["name"].get<std::string>()) << ": " << shown(b["module"].get<std::string>())
                      << (b["module_exists"].get<bool>() ? "" : " (missing)")
                      << (b["pin_counter"] == "token" ? ", the Key counts its PIN tries" : ", ukey counts PIN tries")
                      << (b["optional"].get<bool>() ? ", optional" : "") << '\n';
            for (const auto& r : b["p11kit"])
                std::cout << "  " << registration_line(r) << '\n';
        }
    });
}

void add(Context& ctx, const BackendOptions& o)
{
    const fs::path path = config_path();
    BackendConfig b;
    b.name = o.name;
    b.module = o.module.find('/') == std::string::npos ? (system_module_dir() / o.module).string()
                                                       : fs::absolute(o.module).lexically_normal().string();
    if (o.pin_counter != "ukey" && o.pin_counter != "token")
        throw Failure(usage, "--pin-counter is \"ukey\" or \"token\", not '" + shown(o.pin_counter) + "'");
    b.pin_counter = o.pin_counter == "token" ? PinCounter::token : PinCounter::ukey;
    b.optional = o.optional;
    b.removable = !o.fixed;
    b.fixes = !o.no_fixes;
    // The module: there, trusted as the module will trust it, and PKCS#11.
    if (auto f = trusted_file(b.module, "backend module"); !f)
        throw Failure(bad_input, f.error().message);
    if (void* dl = dlopen(b.module.c_str(), RTLD_LAZY | RTLD_LOCAL)) {
        const bool pkcs11 = dlsym(dl, "C_GetFunctionList") != nullptr;
        dlclose(dl);
        if (!pkcs11)
            throw Failure(bad_input, shown(b.module) + " is not a PKCS#11 module (it has no C_GetFunctionList)");
    } else {
        const char* why = dlerror();
        throw Failure(bad_input, "cannot load " + shown(b.module) + ": " + shown(why ? why : "dlopen failed"));
    }
    const std::string text = config_text(path, false);
    // One module, one backend: a Key seen through two backends would have
    // two PIN counters.
    for (const auto& have : configured(path, text))
        if (!real_file(have.module).empty() && real_file(have.module) == real_file(b.module))
            throw Failure(bad_input, "the module " + shown(b.module) + " is already the backend '" +
                                         shown(have.name) + "': a Key seen through two backends would have two PIN "
                                         "counters");
    auto edited = client::config_add_backend(text, path, b);
    if (!edited)
        throw Failure(bad_input, edited.error().message);
    write_config(path, *edited);
    const json hidden = o.keep_p11kit ? json::array() : hide_all(client::p11kit_dirs(), b.module, b.name);
    json doc = {{"config", path.string()}, {"name", b.name}, {"module", b.module}, {"p11kit_hidden", hidden}};
    ctx.print(doc, [&] {
        std::cout << "Backend '" << shown(b.name) << "' (" << shown(b.module) << ") added to " << shown(path.string())
                  << ".\n";
        for (const auto& h : hidden)
            std::cout << "Its registration with p11-kit as '" << shown(h["name"].get<std::string>())
                      << "' is hidden (" << shown(h["file"].get<std::string>())
                      << "): applications see its Keys once, through ukey.\n";
        std::cout << "Restart the applications that use it (browsers) so that they see its Keys.\n";
    });
}

// `name`, or every configured backend when it is empty (--all).
void hide(Context& ctx, const std::string& name)
{
    const fs::path path = config_path();
    const auto dirs = client::p11kit_dirs();
    json done = json::array();
    for (const auto& b : configured(path, config_text(path, true)))
        if (name.empty() || b.name == name)
            done.push_back({{"name", b.name}, {"module", b.module}, {"p11kit_hidden", hide_all(dirs, b.module, b.name)}});
    if (done.empty())
        throw Failure(bad_input, "no backend named '" + shown(name) + "' is configured in " + shown(path.string()) +
                                     " (`ukey backend list`)");
    json doc = name.empty() ? json{{"backends", done}} : json{{"name", name}, {"p11kit_hidden", done[0]["p11kit_hidden"]}};
    ctx.print(doc, [&] {
        for (const auto& b : done) {
            if (b["p11kit_hidden"].empty())
                std::cout << "Nothing to hide for '" << shown(b["name"].get<std::string>())
                          << "': no program using p11-kit-proxy loads " << shown(b["module"].get<std::string>())
                          << " directly.\n";
            for (const auto& h : b["p11kit_hidden"])
                std::cout << "Hidden: the registration with p11-kit as '" << shown(h["name"].get<std::string>())
                          << "' (" << shown(h["file"].get<std::string>()) << ") of '"
                          << shown(b["name"].get<std::string>()) << "'.\n";
        }
    });
}

// Takes away ukey's overrides for the backend `name`, or all of them when it
// is empty; what was shown again.
json unhide_all(const std::string& name)
{
    const auto dirs = client::p11kit_dirs();
    json shown_again = json::array();
    for (const auto& r : client::p11kit_registrations(dirs)) {
        if (!r.hidden_by_ukey || (!name.empty() && r.hidden_for != name))
            continue;
        if (auto u = client::unhide_registration(dirs, r); !u)
            throw Failure(setup, "cannot show the registration with p11-kit '" + shown(r.name) +
                                     "' again: " + shown(u.error().message));
        shown_again.push_back({{"name", r.name}, {"file", r.file.string()}, {"backend", r.hidden_for}});
    }
    return shown_again;
}

void print_shown_again(const json& shown_again)
{
    for (const auto& r : shown_again)
        std::cout << "The registration with p11-kit as '" << shown(r["name"].get<std::string>()) << "' ("
                  << shown(r["file"].get<std::string>())
                  << ") is back: programs using p11-kit-proxy load the driver directly again.\n";
}

// `ukey backend unhide NAME|--all`: the config stays; for an administrator
// who wants the driver seen directly, and for the package's removal (Keys
// stay usable without ukey).
void unhide(Context& ctx, const std::string& name)
{
    const json shown_again = unhide_all(name);
    ctx.print({{"p11kit_restored", shown_again}}, [&] {
        if (shown_again.empty())
            std::cout << "Nothing hidden by ukey" << (name.empty() ? "" : " for '" + shown(name) + "'") << ".\n";
        print_shown_again(shown_again);
    });
}

void remove(Context& ctx, const std::string& name, bool keep_hidden)
{
    const fs::path path = config_path();
    const std::string text = config_text(path, true);
    auto edited = client::config_remove_backend(text, path, name);
    if (!edited)
        throw Failure(bad_input, edited.error().message);
    write_config(path, *edited);
    json shown_again = json::array();
    if (!keep_hidden) {
        try {
            shown_again = unhide_all(name);
        } catch (const Failure& f) {
            throw Failure(setup, "the backend is removed, but " + std::string(f.what()) +
                                     " (`ukey backend unhide " + name + "`)");
        }
    }
    ctx.print({{"config", path.string()}, {"name", name}, {"p11kit_restored", shown_again}}, [&] {
        std::cout << "Backend '" << shown(name) << "' removed from " << shown(path.string()) << ".\n";
        print_shown_again(shown_again);
    });
}

} // namespace

void add_backend(CLI::App& app, Context& ctx)
{
    auto* b = app.add_subcommand("backend", "The PKCS#11 modules (drivers) ukey offers the Keys of");
    b->require_subcommand(1);
    b->add_subcommand("list", "The configured backends, and each module's own registration with p11-kit")
        ->callback([&ctx] { list(ctx); });

    auto o = std::make_shared<BackendOptions>();
    auto* a = b->add_subcommand("add", "Add a backend to the config, and hide its module's own p11-kit registration");
    a->add_option("name", o->name, "Its name: part of every slot ID and Key identity, so never change it")->required();
    a->add_option("module", o->module, "The driver: a path, or a file name in p11-kit's module folder")->required();
    a->add_option("--pin-counter", o->pin_counter, "Who counts wrong PINs: ukey (default) or token (the Key itself)");
    a->add_flag("--optional", o->optional, "The module may fail to load (the others still work)");
    a->add_flag("--fixed", o->fixed, "Its Keys are built in, not removable");
    a->add_flag("--no-fixes", o->no_fixes, "Pass the module's answers through unchanged (docs/backend-fixes.md)");
    a->add_flag("--keep-p11-kit", o->keep_p11kit, "Leave the module's own p11-kit registration as it is");
    a->callback([&ctx, o] { add(ctx, *o); });

    // NAME or --all (an empty name), exactly one.
    auto name_or_all = [&ctx](CLI::App* c, void (*run)(Context&, const std::string&)) {
        auto name = std::make_shared<std::string>();
        auto all = std::make_shared<bool>(false);
        c->add_option("name", *name, "The backend's name")->excludes(c->add_flag("--all", *all, "Every backend"));
        c->callback([&ctx, run, name, all] {
            if (name->empty() && !*all)
                throw Failure(usage, "name a backend, or give --all");
            run(ctx, *name);
        });
    };
    name_or_all(b->add_subcommand("hide", "Hide a configured backend's own p11-kit registration"), hide);
    name_or_all(b->add_subcommand("unhide", "Show a backend's own p11-kit registration again (the config stays)"),
                unhide);

    auto rm_name = std::make_shared<std::string>();
    auto keep = std::make_shared<bool>(false);
    auto* r = b->add_subcommand("remove", "Remove a backend from the config; its p11-kit registration is shown again");
    r->add_option("name", *rm_name, "The backend's name")->required();
    r->add_flag("--keep-hidden", *keep, "Leave its p11-kit registration hidden");
    r->callback([&ctx, rm_name, keep] { remove(ctx, *rm_name, *keep); });
}

} // namespace ukey::cli
