#!/usr/bin/perl
# TheSchwartz side of the jobs bench, on SQLite (DBD::SQLite) with the same pragmas
# preforkd uses (WAL, synchronous=NORMAL), so the comparison is storage-for-storage.
#
#   theschwartz.pl init DB              create the schema (TheSchwartz's, adapted to SQLite)
#   theschwartz.pl enqueue DB N         insert N jobs one by one ($client->insert, as an
#                                       application does); prints "SECONDS" spent inserting
#   theschwartz.pl worker DB DEADLINE   work_once in a loop with a no-op work(); exits when
#                                       the job table is empty or after DEADLINE seconds
use strict;
use warnings;
use DBI;
use Time::HiRes qw(time sleep);
use TheSchwartz;
use TheSchwartz::Worker;
use Data::ObjectDriver::Driver::DBI;

package BenchNoop {
  our @ISA = ('TheSchwartz::Worker');
  sub work { my ($class, $job) = @_; $job->completed; }
}

my ($mode, $db, $arg) = @ARGV;
die "usage: $0 init|enqueue|worker DB [N|DEADLINE]\n" unless $mode && $db;

sub pragmas {
  my ($dbh) = @_;
  $dbh->do('PRAGMA journal_mode=WAL');
  $dbh->do('PRAGMA synchronous=NORMAL');
  $dbh->sqlite_busy_timeout(10_000);
}

sub client {
  my $driver = Data::ObjectDriver::Driver::DBI->new(dsn => "dbi:SQLite:dbname=$db");
  pragmas($driver->rw_handle);
  my $client = TheSchwartz->new(databases => [{ dsn => "dbi:SQLite:dbname=$db", driver => $driver }]);
  return ($client, $driver);
}

if ($mode eq 'init') {
  my $dbh = DBI->connect("dbi:SQLite:dbname=$db", '', '', { RaiseError => 1 });
  pragmas($dbh);
  $dbh->do($_) for split /;\s*\n/, <<'SQL';
CREATE TABLE funcmap (
  funcid INTEGER PRIMARY KEY AUTOINCREMENT,
  funcname VARCHAR(255) NOT NULL,
  UNIQUE (funcname));
CREATE TABLE job (
  jobid INTEGER PRIMARY KEY AUTOINCREMENT,
  funcid INTEGER NOT NULL,
  arg MEDIUMBLOB,
  uniqkey VARCHAR(255) NULL,
  insert_time INTEGER,
  run_after INTEGER NOT NULL,
  grabbed_until INTEGER NOT NULL,
  priority SMALLINT,
  coalesce VARCHAR(255),
  UNIQUE (funcid, uniqkey));
CREATE INDEX job_funcid_runafter ON job (funcid, run_after);
CREATE INDEX job_funcid_coalesce ON job (funcid, coalesce);
CREATE TABLE note (
  jobid BIGINT NOT NULL,
  notekey VARCHAR(255),
  value MEDIUMBLOB,
  PRIMARY KEY (jobid, notekey));
CREATE TABLE error (
  error_time INTEGER NOT NULL,
  jobid BIGINT NOT NULL,
  message VARCHAR(255) NOT NULL,
  funcid INTEGER NOT NULL DEFAULT 0);
CREATE INDEX error_funcid_errortime ON error (funcid, error_time);
CREATE INDEX error_errortime ON error (error_time);
CREATE INDEX error_jobid ON error (jobid);
CREATE TABLE exitstatus (
  jobid BIGINT PRIMARY KEY NOT NULL,
  funcid INTEGER NOT NULL DEFAULT 0,
  status SMALLINT,
  completion_time INTEGER,
  delete_after INTEGER);
CREATE INDEX exitstatus_funcid ON exitstatus (funcid);
CREATE INDEX exitstatus_deleteafter ON exitstatus (delete_after)
SQL
  $dbh->disconnect;
  exit 0;
}

if ($mode eq 'enqueue') {
  my ($client) = client();
  my $n = $arg || 1000;
  $client->insert(BenchNoop => { warmup => 1 }) or die "insert failed\n";  # funcmap row, connection
  my $t0 = time;
  for my $i (1 .. $n) {
    $client->insert(BenchNoop => { n => $i }) or die "insert $i failed\n";
  }
  printf "%.6f\n", time - $t0;
  exit 0;
}

if ($mode eq 'worker') {
  my ($client, $driver) = client();
  $client->can_do('BenchNoop');
  my $deadline = time + ($arg || 120);
  my $dbh = $driver->rw_handle;
  while (time < $deadline) {
    next if $client->work_once;
    my ($left) = $dbh->selectrow_array('SELECT count(*) FROM job');
    last unless $left;
    sleep 0.001;  # the rest is grabbed by the other worker
  }
  exit(time < $deadline ? 0 : 2);
}
die "unknown mode $mode\n";
