#!/usr/bin/perl
# A persistent handler in Perl (handler: { persistent: [path/to/worker.pl] }: the script
# itself, which its #! line runs; a relative path is the config's: see conf/preforkd.yaml):
# started once per worker child, it reads one JSON job per line on stdin and answers
# one JSON line per job on stdout. Log to STDERR: stdout is the protocol.
use strict;
use warnings;
use JSON::PP;

$| = 1;  # answer at once: preforkd waits for the line
# A payload may be nested 512 levels deep (preforkctl's limit), and the request around it
# adds one: JSON::PP's default limit (512) would die on it.
my $json = JSON::PP->new->canonical->max_depth(1024);
while (my $line = <STDIN>) {
    my $job = $json->decode($line);
    my $payload = $job->{payload};
    print STDERR "perl worker $$: job $job->{id} on $job->{queue}, attempt $job->{attempt}\n";
    if (ref $payload eq 'HASH' && $payload->{fail}) {
        print $json->encode({ id => $job->{id}, status => 'error',
                              error => 'the payload asked to fail', retry => JSON::PP::true }), "\n";
        next;
    }
    # ... the real work goes here ...
    print $json->encode({ id => $job->{id}, status => 'ok' }), "\n";
}
