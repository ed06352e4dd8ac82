#include "report.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <thread>

namespace ukey_bench {

namespace {

// Four decimals, as the report always had; NaN and infinity are null.
nlohmann::ordered_json number(double v) {
    if (!std::isfinite(v)) return nullptr;
    return std::round(v * 1e4) / 1e4;
}

nlohmann::ordered_json numbers(const std::vector<double>& v) {
    auto out = nlohmann::ordered_json::array();
    for (double x : v) out.push_back(number(x));
    return out;
}

}  // namespace

void print_json(const Options& o, const std::vector<Measurement>& ms) {
    using json = nlohmann::ordered_json;
    json results = json::array();
    for (const auto& m : ms) {
        json r = {{"name", m.key},
                  {"kind", m.kind == Kind::Throughput ? "throughput" : m.kind == Kind::Login ? "login" : "latency"},
                  {"unit", m.unit()},
                  {"direct", number(m.direct())},
                  {"ukey", number(m.ukey())},
                  {"ratio", number(m.ratio())}};
        if (m.kind != Kind::Throughput) r["added_ns"] = number(m.added_ns());
        r["target"] = m.target();
        r["pass"] = m.pass();
        r["noise"] = number(m.noise());
        r["direct_samples"] = numbers(m.samples[0]);
        r["ukey_samples"] = numbers(m.samples[1]);
        results.push_back(std::move(r));
    }
    const json doc = {{"direct_module", o.direct_module},
                      {"ukey_module", o.ukey_module},
                      {"side_b", o.side_b},
                      {"rounds", o.rounds},
                      {"seconds", number(o.seconds)},
                      {"latency_iterations", o.iterations},
                      {"latency_batches", o.batches},
                      {"cpus", std::thread::hardware_concurrency()},
                      {"load_average_at_start", number(o.load_at_start)},
                      {"machine_busy", machine_busy(o.load_at_start)},
                      {"results", std::move(results)}};
    std::cout << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

void print_table(const Options& o, const std::vector<Measurement>& ms) {
    std::printf("ukey-bench: %u A/B rounds, %.1f s per throughput run, %lu calls per latency run "
                "(%u batches), %u CPUs\n",
                o.rounds, o.seconds, o.iterations, o.batches, std::thread::hardware_concurrency());
    std::printf("  direct:   %s\n  %s: %s\n  load average at start: %.2f\n\n", o.direct_module.c_str(),
                o.side_b.c_str(), o.ukey_module.c_str(), o.load_at_start);
    std::printf("%-50s %14s %14s %7s %9s %6s  %-16s %s\n", "measurement (median)", "SoftHSM direct",
                o.serve == Serve::none ? "via ukey" : "over RPC", "ratio", "added ns", "noise", "target", "result");
    for (const auto& m : ms) {
        std::string name = m.title + " [" + m.unit() + "]";
        char added[32] = "-";
        if (m.kind != Kind::Throughput) std::snprintf(added, sizeof added, "%+.1f", m.added_ns());
        std::printf("%-50s %14.1f %14.1f %7.3f %9s %5.1f%%  %-16s %s\n", name.c_str(), m.direct(),
                    m.ukey(), m.ratio(), added, 100.0 * m.noise(), m.target().c_str(),
                    m.pass() ? "PASS" : "MISS");
    }
    std::printf("\nratio = via ukey / direct (throughput: higher is better; latency: lower is "
                "better).\nnoise = largest (max-min)/median over the repeated samples of one side.\n"
                "Targets are informational; a MISS does not change the exit status.\n");
    if (machine_busy(o.load_at_start)) {
        std::printf("WARNING: the machine was busy when the run started (load average %.2f on %u "
                    "CPUs);\nthe numbers are noisy, rerun on a quiet machine or with more --rounds.\n",
                    o.load_at_start, std::thread::hardware_concurrency());
    }
}

}  // namespace ukey_bench
