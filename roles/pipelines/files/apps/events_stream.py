"""Streaming pipeline: Kafka `events` -> per-minute totals by event type -> Elasticsearch.

Kafka -> parse -> watermark -> tumbling event-time window by event_type -> foreachBatch -> bulk API,
output mode `update`: every micro-batch re-sends the windows it changed, each as one document
whose _id (<event_type>-<window start in epoch ms>) makes a replay after a restart overwrite it.
The checkpoint (--checkpoint) holds the Kafka offsets and the window state, so a restarted driver
continues where the last committed micro-batch ended.

Progress goes to stdout, one line per micro-batch: `progress {...}` (Spark's own progress JSON)
and `batch <id>: wrote <n> documents`.

    spark-submit --packages org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version> \\
      --py-files bigdata_pipelines.py events_stream.py --bootstrap-servers kafka:9092 \\
      --checkpoint hdfs://namenode:8020/checkpoints/events-stream --es-url http://elasticsearch:9200

Credentials for Elasticsearch come from the environment only: ES_USERNAME and ES_PASSWORD.
"""

import argparse
import sys

import bigdata_pipelines as bp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="events_stream.py", description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", required=True, help="Kafka bootstrap servers, host:port[,...]")
    parser.add_argument("--topic", default="events", help="topic to read (default %(default)s)")
    parser.add_argument("--starting-offsets", choices=("earliest", "latest"), default="earliest",
                        help="where a new checkpoint starts; a restart always continues from the "
                             "checkpoint (default %(default)s)")
    parser.add_argument("--checkpoint", type=bp.storage_uri, required=True,
                        help="checkpoint location, an hdfs:// or file:// URI that survives the driver")
    bp.add_elasticsearch_options(parser, "events-per-minute")
    parser.add_argument("--window", type=bp.duration, default="1 minute",
                        help="tumbling window length (default %(default)s)")
    parser.add_argument("--watermark", type=bp.duration, default="2 minutes",
                        help="how late an event may arrive and still count (default %(default)s)")
    parser.add_argument("--trigger", type=bp.duration, default="10 seconds",
                        help="micro-batch interval (default %(default)s)")
    parser.add_argument("--max-offsets-per-trigger", type=bp.positive_int, default=None,
                        help="at most this many Kafka records per micro-batch (default: all available)")
    parser.add_argument("--kafka-ca", type=bp.readable_file, default=None,
                        help="PEM file of the CA of Kafka's certificates: talk to Kafka over SSL")
    return parser.parse_args(argv)


def kafka_source(spark, args):
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", args.bootstrap_servers)
              .option("subscribe", args.topic)
              .option("startingOffsets", args.starting_offsets))
    if args.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
    if args.kafka_ca:
        # The Kafka client reads PEM trust stores itself (ssl.truststore.type=PEM, KIP-651).
        reader = (reader.option("kafka.security.protocol", "SSL")
                  .option("kafka.ssl.truststore.type", "PEM")
                  .option("kafka.ssl.truststore.location", args.kafka_ca))
    return reader.load()


def progress_listener():
    """A listener printing each micro-batch's progress JSON on stdout (see the module doc)."""
    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressLog(StreamingQueryListener):
        def onQueryStarted(self, event):
            bp.log("started query id=%s run=%s" % (event.id, event.runId))

        def onQueryProgress(self, event):
            bp.log("progress " + event.progress.json)

        def onQueryIdle(self, event):
            pass

        def onQueryTerminated(self, event):
            bp.log("terminated query id=%s exception=%s" % (event.id, event.exception))

    return ProgressLog()


def main(argv=None):
    args = parse_args(argv)
    sink = bp.ElasticsearchSink.from_options(args)
    spark = bp.spark_session("events-stream")
    spark.streams.addListener(progress_listener())

    events = bp.parse_events(kafka_source(spark, args))
    documents = bp.window_documents(bp.windowed_totals(events, args.window, args.watermark))

    def write_batch(frame, batch_id):
        written = sink.write_dataframe(frame)
        bp.log("batch %d: wrote %d documents to %s" % (batch_id, written, args.es_index))

    query = (documents.writeStream.queryName("events-per-window").outputMode("update")
             .option("checkpointLocation", args.checkpoint)
             .trigger(processingTime=args.trigger)
             .foreachBatch(write_batch)
             .start())
    query.awaitTermination()


if __name__ == "__main__":
    sys.exit(main())
