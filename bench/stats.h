// ukey-bench's statistics, and how busy the machine is.
#pragma once

#include <vector>

namespace ukey_bench {

double median(std::vector<double> v);
// (max - min) / median: how far apart the repeated samples of one side are.
double spread(const std::vector<double>& v);
// The p-th percentile (nearest rank) of v.
double percentile(std::vector<double> v, double p);
// The 1-minute load average, or NaN where unavailable.
double load_average();
// Other work on the machine hits the two sides unequally however the phases
// are interleaved; say so when the machine was busy before we started.
bool machine_busy(double load);

}  // namespace ukey_bench
