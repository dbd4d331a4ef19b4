#!/usr/bin/perl
# Parallel::Prefork's side of the bench: the usual start-up script.
#
#   perl prefork_peer.pl WORKERS                 in-process children: a Perl sub in start()
#   perl prefork_peer.pl WORKERS CHILD_PROGRAM   exec'd children: start(sub { exec ... })
#
# Children report on the FIFO $BENCH_FIFO exactly as bench_child.c does, and follow
# $BENCH_MODE (exit | idle | work) the same way. HUP is handled as the module's
# documentation shows (trap_signals HUP => 'TERM', start() called again in a loop):
# every child gets TERM, which these children treat as "finish the current piece of
# work, then exit" (as QUIT under preforkd).
use strict;
use warnings;
use Fcntl qw(O_WRONLY);
use POSIX qw(SIGQUIT SIGTERM SIGINT SIGUSR1 SIG_BLOCK);
use Parallel::Prefork;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my ($workers, $child_program) = @ARGV;
die "usage: $0 WORKERS [CHILD_PROGRAM]\n" unless $workers;
my $fifo = $ENV{BENCH_FIFO} or die "BENCH_FIFO is not set\n";
my $mode = $ENV{BENCH_MODE} or die "BENCH_MODE is not set\n";
my $work_ms = $ENV{BENCH_WORK_MS} || 200;

sub report {
    my ($tag) = @_;
    sysopen(my $fh, $fifo, O_WRONLY) or return;
    syswrite($fh, sprintf("%s %d %.0f\n", $tag, $$, clock_gettime(CLOCK_MONOTONIC) * 1e9));
    close $fh;
}

# Work that a signal does not cut short (the signals are blocked meanwhile anyway).
sub work {
    my $until = clock_gettime(CLOCK_MONOTONIC) + $work_ms / 1000;
    while ((my $left = $until - clock_gettime(CLOCK_MONOTONIC)) > 0) {
        Time::HiRes::sleep($left);
    }
}

sub child_main {
    report('R');
    return if $mode eq 'exit';
    my ($stop, $go) = (0, 0);
    # As in bench_child.c: signals stay blocked outside sigsuspend, so a stop that
    # arrives during work is seen after it.
    my $handled = POSIX::SigSet->new(SIGQUIT, SIGTERM, SIGINT, SIGUSR1);
    my $waiting = POSIX::SigSet->new;
    POSIX::sigprocmask(SIG_BLOCK, $handled, $waiting);
    $SIG{$_} = sub { $stop = 1 } for qw(QUIT TERM INT);
    $SIG{USR1} = sub { $go = 1 };
    for (;;) {
        POSIX::sigsuspend($waiting) while !$stop && !$go;
        if ($go && $mode eq 'work') {
            $go = 0;
            report('B');
            work();
            report('D');
        }
        $go = 0;
        return if $stop;
    }
}

my $pm = Parallel::Prefork->new({
    max_workers          => $workers,
    spawn_interval       => 0,
    err_respawn_interval => 0,   # as preforkd's err_respawn_interval: 0s in the bench
    trap_signals         => { TERM => 'TERM', INT => 'TERM', HUP => 'TERM' },
});
while ($pm->signal_received ne 'TERM' && $pm->signal_received ne 'INT') {
    $pm->start(sub {
        if (defined $child_program) {
            exec { $child_program } $child_program or POSIX::_exit(127);
        }
        child_main();
    });
}
$pm->wait_all_children();
