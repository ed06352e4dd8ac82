#!/usr/bin/perl
# activate.pl SOCKET... -- CMD...: socket activation as systemd does it for
# ukeyd.socket (sd_listen_fds(3)), for tests/service/activation.sh. Binds
# and listens on each SOCKET (mode 0666), then runs CMD with them as fds
# 3, 4, ... and LISTEN_FDS / LISTEN_PID set, and runs it again whenever it
# ends other than with exit 0 (Restart=on-failure), holding the sockets in
# between: a connection made while CMD is down waits in the backlog. SIGTERM
# is passed on to CMD, and ends this script once CMD has ended.
use strict;
use warnings;
use Socket;
use POSIX ();

my @paths;
while (@ARGV && $ARGV[0] ne '--') { push @paths, shift @ARGV; }
shift @ARGV;
die "usage: activate.pl SOCKET... -- CMD...\n" unless @paths && @ARGV;

$^F = 255; # keep the sockets open across exec
my @socks;
for my $p (@paths) {
    unlink $p;
    socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
    bind($s, pack_sockaddr_un($p)) or die "bind $p: $!";
    chmod 0666, $p;
    listen($s, 128) or die "listen: $!";
    push @socks, $s;
}

my $child = 0;
my $stopping = 0;
$SIG{TERM} = sub { $stopping = 1; kill 'TERM', $child if $child; };
while (1) {
    $child = fork();
    die "fork: $!" unless defined $child;
    if ($child == 0) {
        my $fd = 3;
        for my $s (@socks) {
            POSIX::dup2(fileno($s), $fd) == $fd or die "dup2: $!" unless fileno($s) == $fd;
            $fd++;
        }
        $ENV{LISTEN_FDS} = scalar @socks;
        $ENV{LISTEN_PID} = $$;
        exec @ARGV or die "exec: $!";
    }
    print STDERR "activate.pl: started $child\n";
    my $w;
    do { $w = waitpid($child, 0); } while ($w == -1 && $!{EINTR});
    my $status = $?;
    print STDERR "activate.pl: $child ended ($status)\n";
    $child = 0;
    exit 0 if $stopping || $status == 0;
    select(undef, undef, undef, 0.2); # RestartSec
}
