#include "stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

namespace ukey_bench {

double median(std::vector<double> v) {
    if (v.empty()) return std::nan("");
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double spread(const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    double m = median(v);
    return m > 0 ? (*hi - *lo) / m : 0.0;
}

double load_average() {
    double v = std::nan("");
    if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &v) != 1) v = std::nan("");
        std::fclose(f);
    }
    return v;
}

bool machine_busy(double load) {
    unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    return std::isfinite(load) && load >= 0.5 * cpus;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return std::nan("");
    std::sort(v.begin(), v.end());
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace ukey_bench
