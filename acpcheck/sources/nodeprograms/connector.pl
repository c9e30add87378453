# acpcheck's connector for nodes with perl but no python3 (same input as connector.py).
use strict; use IO::Socket::INET; use IO::Select;
my ($to, $par) = @ARGV; $| = 1;
my @todo = grep { /\S/ } <STDIN>; chomp @todo;
my $w = $par < @todo ? $par : scalar @todo; $w = 1 if $w < 1;
my @kids;
for my $k (0 .. $w - 1) {
  my $pid = fork;
  if (!$pid) {
    for (my $j = $k; $j < @todo; $j += $w) {
      my ($idx, $p, $host, $port, $mode) = split ' ', $todo[$j];
      my $r;
      my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => $p, Timeout => $to);
      if (!$s) { $r = $!{ECONNREFUSED} ? "refused" : ($!{ETIMEDOUT} || $!{EINPROGRESS}) ? "timeout" : do { (my $m = "$!") =~ s/ /_/g; "unreachable $m" }; }
      elsif ($mode eq "tcp") { $r = "ok"; close $s; }
      else {
        $s->send("ACPCHECK?\n"); my $d = ""; my $sel = IO::Select->new($s);
        while (length($d) < 512 && $sel->can_read($to)) { my $c; my $got = sysread($s, $c, 512); if (!defined $got) { $r = $!{ECONNREFUSED} ? "refused" : "closed"; last } last if !$got; $d .= $c; last if $p eq "udp" || ($d =~ /acpcheck / && $d =~ /\n\z/); }
        $r //= length($d) ? "data " . unpack("H*", $d) : ($p eq "tcp" ? "silent" : "timeout");
        close $s;
      }
      print "acpcheck-conn $idx $r\n";
    }
    exit 0;
  }
  push @kids, $pid;
}
waitpid($_, 0) for @kids;
