/*
 * One-line exported wrappers for the DPDK 22.11 `static inline` functions and
 * macros that bindgen cannot bind. Rust cannot inline these (different LLVM),
 * so the safe layer calls the burst ones once per burst, never per packet.
 */
#ifndef RIPVS_SHIM_H
#define RIPVS_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

/* ethdev fast path */
uint16_t ripvs_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t ripvs_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

/* RTE_ETH_RSS_* are built with RTE_BIT64(), which bindgen cannot evaluate. */
uint64_t ripvs_eth_rss_ip_tcp_udp(void);
/* The hash-field modifiers (RTE_ETH_RSS_L3_SRC_ONLY...) and the flow types with
 * ports, for the tests that check dpdk_sys::ethdev::rss_hf against the macros. */
uint64_t ripvs_eth_rss_l3_src_only(void);
uint64_t ripvs_eth_rss_l3_dst_only(void);
uint64_t ripvs_eth_rss_l4_src_only(void);
uint64_t ripvs_eth_rss_l4_dst_only(void);
uint64_t ripvs_eth_rss_nonfrag_ipv4_tcp(void);
uint64_t ripvs_eth_rss_nonfrag_ipv4_udp(void);
uint64_t ripvs_eth_rss_nonfrag_ipv4_sctp(void);
uint64_t ripvs_eth_rss_nonfrag_ipv6_tcp(void);
uint64_t ripvs_eth_rss_nonfrag_ipv6_udp(void);
uint64_t ripvs_eth_rss_nonfrag_ipv6_sctp(void);
/* RTE_ETH_RX_OFFLOAD_* (RTE_BIT64() too), for the test of ethdev::rx_offload. */
uint64_t ripvs_eth_rx_offload_ipv4_cksum(void);
uint64_t ripvs_eth_rx_offload_udp_cksum(void);
uint64_t ripvs_eth_rx_offload_tcp_cksum(void);
uint64_t ripvs_eth_rx_offload_rss_hash(void);

/* mbufs */
struct rte_mbuf *ripvs_pktmbuf_alloc(struct rte_mempool *mp);
int ripvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void ripvs_pktmbuf_free(struct rte_mbuf *m);
char *ripvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *ripvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *ripvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int ripvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t ripvs_mbuf_refcnt_read(const struct rte_mbuf *m);

/* rings */
unsigned int ripvs_ring_sp_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n,
					 unsigned int *free_space);
unsigned int ripvs_ring_sc_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n,
					 unsigned int *available);
unsigned int ripvs_ring_count(const struct rte_ring *r);

/* EAL */
unsigned int ripvs_lcore_id(void);
uint64_t ripvs_get_tsc_cycles(void);
int ripvs_errno(void);

#endif
