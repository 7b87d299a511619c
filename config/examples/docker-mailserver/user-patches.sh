#!/bin/bash
# docker-data/dms/config/user-patches.sh — run by docker-mailserver at container start.
# PROXY-protocol variants of the submission services for Traefik (as in DMS's "Mail-Server
# behind a Proxy" guide). Each gets its own syslog_name; the hyphen in it is exactly what
# fail2ban's postfix filter (`postfix(-\w+)?/\w+`) fails to match and authwall recognises.

# 10587: submission (STARTTLS) behind the proxy
postconf -Mf submission/inet | sed -e 's/^submission/10587/' >> /etc/postfix/master.cf
postconf -P 10587/inet/smtpd_upstream_proxy_protocol=haproxy \
            10587/inet/syslog_name=postfix/submission-proxyprotocol
# 10465: submissions (implicit TLS) behind the proxy
postconf -Mf submissions/inet | sed -e 's/^submissions/10465/' >> /etc/postfix/master.cf
postconf -P 10465/inet/smtpd_upstream_proxy_protocol=haproxy \
            10465/inet/syslog_name=postfix/submissions-proxyprotocol
# 12525: port 25 (postscreen) behind the proxy
postconf -Mf smtp/inet | sed -e 's/^smtp/12525/' >> /etc/postfix/master.cf
postconf -P 12525/inet/postscreen_upstream_proxy_protocol=haproxy \
            "12525/inet/postscreen_cache_map=proxy:btree:\$data_directory/postscreen_12525_cache" \
            12525/inet/syslog_name=postfix/smtp-proxyprotocol
