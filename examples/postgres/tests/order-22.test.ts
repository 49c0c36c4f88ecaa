import { orderScenario } from './scenarios.js';

orderScenario(5);
