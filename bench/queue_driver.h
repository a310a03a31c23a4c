// The queue workload's driver: Options::clients producer threads and as many
// consumer threads, each with its own QueueClient (own connection), share one
// queue through a warm-up and a measured window.
//
// Timeline, shared by all threads:
//   connect + QueueClient::Open   (not timed; consumer 0 also purges the
//                                  queue; all threads wait for each other)
//   warm-up  [start, from)        items flow but are not counted
//   window   [from, from + seconds)  counted: items got by a consumer
//   drain                          producers stop putting; the last one puts
//                                  one stop marker per consumer; consumers
//                                  get what is left and stop at a marker
//
// A producer stamps each item with the time just before its Put; a consumer
// subtracts that from the time its Get returned: the put-to-get latency,
// which includes the Put call, the time in the queue and the Get reply.
// Options::backlog bounds, per producer, the items put and not yet got, so
// that the queue cannot grow without bound when producers outrun consumers
// (the latency would then measure the length of the run).
#ifndef BATON_BENCH_QUEUE_DRIVER_H_
#define BATON_BENCH_QUEUE_DRIVER_H_

#include "bench/driver.h"
#include "bench/options.h"

namespace baton::bench {

// Runs the queue workload described by `options` (workload kQueue). Never
// fails as a whole: client errors are reported in the result, whose count,
// rate and fairness are those of items got by consumers.
Result RunQueueBenchmark(const Options& options);

}  // namespace baton::bench

#endif  // BATON_BENCH_QUEUE_DRIVER_H_
