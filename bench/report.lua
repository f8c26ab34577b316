-- wrk reports its own percentiles; print the ones the benchmark needs as one line of JSON.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"p50": %.2f, "p95": %.2f, "p99": %.2f, "rps": %.1f, "errors": %d, "non2xx": %d}\n',
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / seconds,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
