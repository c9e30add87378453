# acpcheck's listener for nodes with perl but no python3 (same arguments as listener.py).
use strict; use IO::Socket::INET; use IO::Select;
my ($n, $i, $f, $b, @specs) = @ARGV;
my $h = "acpcheck $n $i\n";
$SIG{PIPE} = "IGNORE"; $| = 1;
my $class = "IO::Socket::INET";
if ($f eq "6") { require IO::Socket::IP; $class = "IO::Socket::IP"; }
my $host = $b ne "" ? $b : ($f eq "6" ? "::" : "0.0.0.0");
my $sel = IO::Select->new; my %udp; my @out;
for my $spec (@specs) {
  my ($p, $port) = split m{/}, $spec;
  my $k = $p eq "tcp"
    ? $class->new(LocalHost => $host, LocalPort => $port, Proto => "tcp", Listen => 128, ReuseAddr => 1)
    : $class->new(LocalHost => $host, LocalPort => $port, Proto => "udp");
  if ($k) { $sel->add($k); $udp{fileno $k} = 1 if $p eq "udp"; push @out, "acpcheck-port $p $port ok"; }
  else { my $w = $!{EADDRINUSE} ? "busy" : "error"; (my $m = "$!") =~ s/ /_/g; push @out, "acpcheck-port $p $port $w $m"; }
}
print join("\n", @out, "acpcheck-ready"), "\n";
my $last = 0;
while (1) {
  for my $k ($sel->can_read(0.5)) {
    if ($udp{fileno $k}) { my $a = $k->recv(my $d, 512); $k->send($h, 0, $a) if defined $a; next; }
    my $c = $k->accept or next;
    my $q = ""; sysread($c, $q, 512) if IO::Select->new($c)->can_read(0.3);
    if ($q =~ /^(GET |HEAD|OPTI)/) { print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($h) . "\r\nConnection: close\r\n\r\n$h"; }
    else { print $c $h; }
    close $c;
  }
  if (time != $last) { $last = time; print "\n" or exit 0; }
}
