"""Event generator: produces --count events at --rate events/s to a Kafka topic.

Events follow docs/pipelines.md: JSON values, key = user_id, event ids s<seed>-<sequence>. Users
are drawn with Zipf skew (--keys, --skew), so a few hot keys load some partitions more than
others. Event n is the same for the same --seed, whichever run produces it (--first-sequence
lets a second run continue the sequence).

Event times: the wall clock when the event is produced; or, with --start-time, start-time +
n * --time-step (default 1/rate seconds), which spreads events over as much event time as wanted
without waiting for it (tests and demos of windows and watermarks use this).

Writes go through Spark's Kafka connector, one write per second of events, each logged as
`sent events <first>..<last>, event time <time of the first>`:

    spark-submit --master 'local[1]' --packages org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version> \\
      --py-files bigdata_pipelines.py events_generator.py --bootstrap-servers kafka:9092 --count 10000 --rate 100
"""

import argparse
import math
import sys
import time

import bigdata_pipelines as bp

# One Spark write per this many seconds of events: each write is a Spark job of its own.
CHUNK_SECONDS = 1.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="events_generator.py", description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", required=True, help="Kafka bootstrap servers, host:port[,...]")
    parser.add_argument("--topic", default="events", help="topic to write (default %(default)s)")
    parser.add_argument("--count", type=bp.non_negative_int, default=10000,
                        help="number of events (default %(default)s)")
    parser.add_argument("--rate", type=bp.positive_float, default=100.0,
                        help="events per second (default %(default)s)")
    parser.add_argument("--first-sequence", type=bp.non_negative_int, default=0,
                        help="sequence number of the first event (default %(default)s)")
    bp.add_event_options(parser)
    parser.add_argument("--kafka-ca", type=bp.readable_file, default=None,
                        help="PEM file of the CA of Kafka's certificates: talk to Kafka over SSL")
    args = parser.parse_args(argv)
    if args.time_step is not None and args.start_time is None:
        parser.error("--time-step needs --start-time (without it events carry the wall-clock time)")
    return args


def chunks(args):
    """(first sequence, count) of each write, and the second (from the start) it is due."""
    size = max(1, int(math.ceil(args.rate * CHUNK_SECONDS)))
    done = 0
    while done < args.count:
        count = min(size, args.count - done)
        yield args.first_sequence + done, count, done / args.rate
        done += count


def main(argv=None):
    args = parse_args(argv)
    generator = bp.EventGenerator(args.seed, args.keys, args.skew)
    step_ms = 1000.0 * (args.time_step if args.time_step else 1.0 / args.rate)
    spark = bp.spark_session("events-generator")
    options = {"kafka.bootstrap.servers": args.bootstrap_servers, "topic": args.topic}
    if args.kafka_ca:
        options.update({"kafka.security.protocol": "SSL", "kafka.ssl.truststore.type": "PEM",
                        "kafka.ssl.truststore.location": args.kafka_ca})

    started = time.monotonic()
    for first, count, due in chunks(args):
        delay = started + due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if args.start_time is not None:
            events = generator.events(first, count, args.start_time, step_ms)
        else:
            # One wall-clock time for the whole write: the events are created together.
            now_ms = int(time.time() * 1000)
            events = [generator.event(n, now_ms) for n in range(first, first + count)]
        rows = [(event["user_id"], bp.to_json_line(event)) for event in events]
        frame = spark.createDataFrame(rows, "key string, value string")
        frame.write.format("kafka").options(**options).save()
        bp.log("sent events %d..%d, event time %s" % (first, first + count - 1, events[0]["ts"]))
    elapsed = time.monotonic() - started
    bp.log("produced %d events (sequences %d..%d of seed %d) to %s in %.1f s (%.0f events/s)"
           % (args.count, args.first_sequence, args.first_sequence + args.count - 1, args.seed,
              args.topic, elapsed, args.count / elapsed if elapsed > 0 else 0.0))
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
