"""Raw-event loader: writes --files JSON-lines files of --events-per-file events under --output.

File i (part-00000.jsonl, part-00001.jsonl, ...) holds events i*N .. (i+1)*N-1 of --seed (N =
--events-per-file), the same events events_generator.py makes. The loader owns --output: a re-run
overwrites the same files, and part-*.jsonl files a previous run with more --files left behind
are deleted, so the directory always holds exactly one run's events.

Event times: event n happens at --start-time + n * --time-step (defaults: 00:00 UTC of the day
the loader runs, 10 seconds). With an explicit --start-time the files are byte for byte the same
on every run.

Files go through Spark's Hadoop client, so any file system Spark reaches works (hdfs://, file://):

    spark-submit --py-files bigdata_pipelines.py hdfs_loader.py \\
      --output hdfs://namenode:8020/data/raw/events --files 10 --events-per-file 1000
"""

import argparse
import datetime
import sys

import bigdata_pipelines as bp

FILE_PREFIX = "part-"
FILE_SUFFIX = ".jsonl"
DEFAULT_TIME_STEP = 10.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="hdfs_loader.py", description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=bp.storage_uri, required=True,
                        help="directory of the raw events, e.g. hdfs://namenode:8020/data/raw/events")
    parser.add_argument("--files", type=bp.non_negative_int, default=10,
                        help="number of files (default %(default)s)")
    parser.add_argument("--events-per-file", type=bp.positive_int, default=1000,
                        help="events in each file (default %(default)s)")
    bp.add_event_options(parser)
    args = parser.parse_args(argv)
    if args.start_time is None:
        today = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0,
                                                                     microsecond=0)
        args.start_time = int(today.timestamp() * 1000)
    if args.time_step is None:
        args.time_step = DEFAULT_TIME_STEP
    return args


def file_name(index):
    return "%s%05d%s" % (FILE_PREFIX, index, FILE_SUFFIX)


def file_text(generator, index, args):
    """The JSON lines of file `index`."""
    events = generator.events(index * args.events_per_file, args.events_per_file, args.start_time,
                              1000.0 * args.time_step)
    return "".join(bp.to_json_line(event) + "\n" for event in events)


def main(argv=None):
    args = parse_args(argv)
    generator = bp.EventGenerator(args.seed, args.keys, args.skew)
    spark = bp.spark_session("hdfs-loader")
    # The Hadoop FileSystem of Spark's JVM: exact file names (a DataFrame write names its files
    # by a random job id, so a re-run would add files instead of replacing them).
    jvm = spark.sparkContext._jvm
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    Path = jvm.org.apache.hadoop.fs.Path
    directory = Path(args.output)
    fs = directory.getFileSystem(hadoop_conf)
    fs.mkdirs(directory)

    written = set()
    for index in range(args.files):
        name = file_name(index)
        stream = fs.create(Path(directory, name), True)
        try:
            stream.write(bytearray(file_text(generator, index, args).encode("utf-8")))
        finally:
            stream.close()
        written.add(name)
    stale = [status.getPath() for status in fs.listStatus(directory)
             if status.isFile() and status.getPath().getName().startswith(FILE_PREFIX)
             and status.getPath().getName().endswith(FILE_SUFFIX)
             and status.getPath().getName() not in written]
    for path in stale:
        fs.delete(path, False)
    bp.log("wrote %d files of %d events (seed %d) to %s; removed %d stale files"
           % (args.files, args.events_per_file, args.seed, args.output, len(stale)))
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
