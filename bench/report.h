// ukey-bench's measurements, its options, and the two ways it reports them
// (a table, or JSON with --json; bench/README.md describes both).
#pragma once

#include "server.h"
#include "stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#ifndef UKEY_BENCH_SOFTHSM_MODULE
#define UKEY_BENCH_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

namespace ukey_bench {

inline constexpr double kSignRatioTarget = 0.98;  // ukey/direct throughput, at least
inline constexpr double kAddedNsTarget = 200.0;   // ukey - direct latency, at most

enum class Kind { Throughput, Latency, Login };

inline bool latency_min = false;  // --min: report the fastest latency batch, not the median

struct Measurement {
    std::string key;    // JSON name
    std::string title;  // table name
    Kind kind;
    std::vector<double> samples[2];  // [0] direct, [1] via ukey
    double pct = 0;                  // Kind::Login: which percentile of single calls

    double stat(int side) const {
        if (pct > 0) return percentile(samples[side], pct);
        // Latency on a shared machine: interference only ever adds time, so
        // the fastest batch is the best estimate of the call's own cost.
        if (kind == Kind::Latency && latency_min) return *std::min_element(samples[side].begin(), samples[side].end());
        return median(samples[side]);
    }
    double direct() const { return stat(0); }
    double ukey() const { return stat(1); }
    double ratio() const { return ukey() / direct(); }
    double added_ns() const { return ukey() - direct(); }
    const char* unit() const { return kind == Kind::Throughput ? "ops/s" : "ns/call"; }
    bool pass() const {
        if (kind == Kind::Login) return true;  // informational: one fdatasync is expected
        return kind == Kind::Throughput ? ratio() >= kSignRatioTarget : added_ns() <= kAddedNsTarget;
    }
    std::string target() const {
        char buf[64];
        if (kind == Kind::Login) return "~1 fsync (info)";
        if (kind == Kind::Throughput) {
            std::snprintf(buf, sizeof buf, "ratio >= %.2f", kSignRatioTarget);
        } else {
            std::snprintf(buf, sizeof buf, "added <= %.0f ns", kAddedNsTarget);
        }
        return buf;
    }
    double noise() const { return std::max(spread(samples[0]), spread(samples[1])); }
};

struct Options {
    std::string direct_module = UKEY_BENCH_SOFTHSM_MODULE;
    std::string ukey_module =
#ifdef UKEY_BENCH_DEFAULT_MODULE
        UKEY_BENCH_DEFAULT_MODULE;
#else
        "";
#endif
    double seconds = 3.0;
    unsigned rounds = 3;
    unsigned long iterations = 200000;
    unsigned batches = 5;
    unsigned logins = 200;
    bool json = false;
    bool audit = true;  // the module's audit log ([audit] enabled), on as by default
    Serve serve = Serve::none;  // --serve: side B over p11-kit's RPC
    std::string side_b = "via ukey";  // what side B is, for the report
    std::string ukeyd =
#ifdef UKEY_BENCH_DEFAULT_UKEYD
        UKEY_BENCH_DEFAULT_UKEYD;
#else
        "/usr/sbin/ukeyd";
#endif
    double load_at_start = std::nan("");  // measured, not an option
};

void print_json(const Options& o, const std::vector<Measurement>& ms);
void print_table(const Options& o, const std::vector<Measurement>& ms);

}  // namespace ukey_bench
