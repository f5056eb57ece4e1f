/* See shim.h: each function is the DPDK inline or macro of the same name. */
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "shim.h"

uint16_t ripvs_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t ripvs_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

uint64_t ripvs_eth_rss_ip_tcp_udp(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
}

uint64_t ripvs_eth_rss_l3_src_only(void)
{
	return RTE_ETH_RSS_L3_SRC_ONLY;
}

uint64_t ripvs_eth_rss_l3_dst_only(void)
{
	return RTE_ETH_RSS_L3_DST_ONLY;
}

uint64_t ripvs_eth_rss_l4_src_only(void)
{
	return RTE_ETH_RSS_L4_SRC_ONLY;
}

uint64_t ripvs_eth_rss_l4_dst_only(void)
{
	return RTE_ETH_RSS_L4_DST_ONLY;
}

uint64_t ripvs_eth_rss_nonfrag_ipv4_tcp(void)
{
	return RTE_ETH_RSS_NONFRAG_IPV4_TCP;
}

uint64_t ripvs_eth_rss_nonfrag_ipv4_udp(void)
{
	return RTE_ETH_RSS_NONFRAG_IPV4_UDP;
}

uint64_t ripvs_eth_rss_nonfrag_ipv4_sctp(void)
{
	return RTE_ETH_RSS_NONFRAG_IPV4_SCTP;
}

uint64_t ripvs_eth_rss_nonfrag_ipv6_tcp(void)
{
	return RTE_ETH_RSS_NONFRAG_IPV6_TCP;
}

uint64_t ripvs_eth_rss_nonfrag_ipv6_udp(void)
{
	return RTE_ETH_RSS_NONFRAG_IPV6_UDP;
}

uint64_t ripvs_eth_rss_nonfrag_ipv6_sctp(void)
{
	return RTE_ETH_RSS_NONFRAG_IPV6_SCTP;
}

uint64_t ripvs_eth_rx_offload_ipv4_cksum(void)
{
	return RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
}

uint64_t ripvs_eth_rx_offload_udp_cksum(void)
{
	return RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
}

uint64_t ripvs_eth_rx_offload_tcp_cksum(void)
{
	return RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
}

uint64_t ripvs_eth_rx_offload_rss_hash(void)
{
	return RTE_ETH_RX_OFFLOAD_RSS_HASH;
}

struct rte_mbuf *ripvs_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int ripvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void ripvs_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

char *ripvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

char *ripvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

char *ripvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

int ripvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

uint16_t ripvs_mbuf_refcnt_read(const struct rte_mbuf *m)
{
	return rte_mbuf_refcnt_read(m);
}

unsigned int ripvs_ring_sp_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n,
					 unsigned int *free_space)
{
	return rte_ring_sp_enqueue_burst(r, objs, n, free_space);
}

unsigned int ripvs_ring_sc_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n,
					 unsigned int *available)
{
	return rte_ring_sc_dequeue_burst(r, objs, n, available);
}

unsigned int ripvs_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

unsigned int ripvs_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t ripvs_get_tsc_cycles(void)
{
	return rte_get_tsc_cycles();
}

int ripvs_errno(void)
{
	return rte_errno;
}
