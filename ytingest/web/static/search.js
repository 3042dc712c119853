// Search results: a hit's link seeks its video's <audio> player to the hit's second and plays it.
// (YouTube hits have no player: their link opens YouTube at the second, in a new tab.)
"use strict";
(function () {
  function seek(player, start) {
    const go = function () {
      player.currentTime = start;
      const playing = player.play();
      if (playing) playing.catch(function () { /* no audio device, or the user paused: stay seeked */ });
    };
    if (player.readyState >= 1) {
      go();
    } else {
      player.addEventListener("loadedmetadata", go, { once: true });
      player.preload = "metadata";
      player.load();
    }
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest("a.open[data-player]");
    if (!link) return;
    const player = document.getElementById(link.dataset.player);
    if (!player) return;
    event.preventDefault();
    const start = parseFloat(link.dataset.start) || 0;
    document.querySelectorAll(".hit.playing").forEach(function (hit) { hit.classList.remove("playing"); });
    link.closest(".hit").classList.add("playing");
    player.dataset.seekedTo = String(start);
    seek(player, start);
  });
})();
