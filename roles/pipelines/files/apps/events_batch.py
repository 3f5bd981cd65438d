"""Batch pipeline: raw JSON-lines events -> daily totals by event type -> Parquet and Elasticsearch.

Reads --input (the files hdfs_loader.py writes, or any JSON lines of the event format), counts
per UTC day and event_type (events, exact distinct users, amount) and writes:
- Parquet at --output, partitioned by `day`, replacing what a previous run wrote there;
- one document per day and type into --es-index, _id = <day>-<event_type>, so a re-run
  overwrites the documents instead of adding more.

    spark-submit --py-files bigdata_pipelines.py events_batch.py \\
      --input hdfs://namenode:8020/data/raw/events --output hdfs://namenode:8020/data/daily \\
      --es-url http://elasticsearch:9200

Credentials for Elasticsearch come from the environment only: ES_USERNAME and ES_PASSWORD.
"""

import argparse
import sys

import bigdata_pipelines as bp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="events_batch.py", description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=bp.storage_uri, required=True,
                        help="directory of JSON-lines event files, e.g. hdfs://namenode:8020/data/raw/events")
    parser.add_argument("--output", type=bp.storage_uri, required=True,
                        help="Parquet output directory (overwritten), e.g. hdfs://namenode:8020/data/daily")
    bp.add_elasticsearch_options(parser, "events-daily")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sink = bp.ElasticsearchSink.from_options(args)
    spark = bp.spark_session("events-batch")

    events = bp.parse_events(spark.read.text(args.input))
    # Small (days x 3 rows) and used twice: computed once.
    totals = bp.daily_totals(events).cache()
    totals.write.mode("overwrite").partitionBy("day").parquet(args.output)
    rows = totals.count()
    written = sink.write_dataframe(bp.daily_documents(totals))
    bp.log("wrote %d daily totals to %s and %d documents to index %s"
           % (rows, args.output, written, args.es_index))
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
